"""Embedders: the local model for real, the OpenAI-compatible one against a local server.

The ``openai`` embedder is tested against a small HTTP server on 127.0.0.1
that speaks the OpenAI embeddings protocol (``POST /v1/embeddings`` with
``{"model", "input": [...], "dimensions"?}`` answered by
``{"data": [{"index", "embedding"}], "model", "usage"}``), with a switch to
answer 503 first so the retries with backoff are exercised.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Iterator

import numpy as np
import pytest

import engram
from engram.embeddings import create_embedder, local_available
from engram.embeddings.openai import OpenAIEmbedder
from engram.errors import BackendError, ConfigError


class _Handler(BaseHTTPRequestHandler):
    failures_left = 0
    requests: list[dict] = []

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        dims = body.get("dimensions", 8)
        data = []
        for i, text in enumerate(body["input"]):
            rng = np.random.default_rng(abs(hash(text)) % 2**32)
            data.append({"object": "embedding", "index": i, "embedding": (rng.normal(size=dims) * 3).tolist()})
        payload = json.dumps({"object": "list", "data": data[::-1], "model": body["model"], "usage": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.failures_left = 0
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_openai_embedder_speaks_the_protocol(server: str) -> None:
    e = OpenAIEmbedder("test-model", base_url=server, api_key="sk-test", dimensions=16, batch_size=2, backoff=0.01)
    vectors = e.embed(["a", "b", "c"])
    assert vectors.shape == (3, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(_Handler.requests) == 2  # batches of 2
    first = _Handler.requests[0]
    assert first["path"] == "/v1/embeddings" and first["auth"] == "Bearer sk-test"
    assert first["body"] == {"model": "test-model", "input": ["a", "b"], "encoding_format": "float", "dimensions": 16}
    # answers out of order are put back in input order
    assert np.allclose(e.embed(["c"])[0], vectors[2])


def test_openai_embedder_retries_then_gives_up(server: str) -> None:
    _Handler.failures_left = 2
    e = OpenAIEmbedder("m", base_url=server, dimensions=4, retries=2, backoff=0.01)
    assert e.embed(["x"]).shape == (1, 4)
    _Handler.failures_left = 5
    with pytest.raises(BackendError, match="503"):
        OpenAIEmbedder("m", base_url=server, dimensions=4, retries=1, backoff=0.01).embed(["x"])


def test_openai_embedder_from_settings_end_to_end(server: str, tmp_path) -> None:
    settings = engram.load_settings(
        database_url=f"sqlite:///{tmp_path / 'o.db'}", embedder="openai", embedding_model="m",
        embedding_base_url=server, embedding_dimensions=8,
    )
    with engram.Memory(settings=settings) as memory:
        memory.store("k", "hello")
        assert memory.stats().embedding_model == "m"
        hit = memory.search("hello", mode="vector").results[0]
        assert hit.entry.key == "k" and hit.score == pytest.approx(1.0, abs=1e-5)


def test_openai_needs_a_model() -> None:
    with pytest.raises(ConfigError, match="embedding_model"):
        create_embedder(engram.load_settings(database_url="memory://", embedder="openai"))


def test_none_and_auto_without_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_embedder(engram.load_settings(database_url="memory://", embedder="none")) is None
    monkeypatch.setattr("engram.embeddings.local_available", lambda: False)
    assert create_embedder(engram.load_settings(database_url="memory://", embedder="auto")) is None
    m = engram.Memory(settings=engram.load_settings(database_url="memory://", embedder="auto"))
    assert "full-text only" in (m.embedder_note or "")


@pytest.mark.skipif(not local_available(), reason="the local extra (engram[local]) is not installed")
def test_local_model_for_real() -> None:
    from engram.embeddings.local import LocalEmbedder

    e = LocalEmbedder()
    assert (e.name, e.dimensions) == ("all-MiniLM-L6-v2", 384)
    v = e.embed(["A cat is sleeping on the sofa.", "A kitten naps on the couch.", "Interest rates rose by half a point."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert similar > 0.5 and similar > unrelated + 0.3
    # batched and one at a time agree
    assert np.allclose(e.embed(["A kitten naps on the couch."])[0], v[1], atol=1e-4)


@pytest.mark.skipif(not local_available(), reason="the local extra (engram[local]) is not installed")
def test_a_failed_onnx_export_falls_back_to_torch(tmp_path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """ONNX only buys speed: when the one-time export fails, the same model runs on torch."""
    from engram.embeddings import local

    def broken_export(model_dir, target):
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(local, "export_onnx", broken_export)
    monkeypatch.setattr(local, "onnx_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(local, "_models", {})
    e = local.LocalEmbedder(runtime="onnx")
    v = e.embed(["A cat is sleeping on the sofa.", "A kitten naps on the couch."])
    assert v.shape == (2, 384) and float(v[0] @ v[1]) > 0.5
    assert "exporting it to ONNX failed" in caplog.text


@pytest.mark.skipif(not local_available(), reason="the local extra (engram[local]) is not installed")
def test_local_embedder_searches_by_meaning(tmp_path) -> None:
    settings = engram.load_settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", embedder="local")
    with engram.Memory(settings=settings) as memory:
        memory.store_many(
            [
                {"key": "pet", "content": "My cat loves sleeping in the sun"},
                {"key": "job", "content": "I started a new job as a nurse"},
            ]
        )
        assert memory.search("kitten napping", mode="vector").results[0].entry.key == "pet"
        hit = memory.search("what is her profession", limit=1).results[0]
        assert hit.entry.key == "job" and hit.match_type == "hybrid"
