"""No input gets a 5xx, a 5xx never stalls the server, and big bodies are refused early (issue 9, item 4)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from engram.memory import Memory
from engram.search.query import MAX_QUERY_CHARS
from engram.validation import MAX_FILTER_KEYS, MAX_JSON_DEPTH
from tests.server.conftest import LiveServer, World, build_world

LIMIT = 64 * 1024  # max_request_bytes of the worlds below


@pytest.fixture
def small_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("ENGRAM_MAX_REQUEST_BYTES", str(LIMIT))
    w = build_world(tmp_path)
    with w.client:
        yield w
    w.tenancy.close()


def nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def post_json(w: World, path: str, text: str) -> httpx.Response:
    headers = {**w.headers("member_a"), "Content-Type": "application/json"}
    return w.client.post(path, content=text.encode("utf-8", "surrogatepass"), headers=headers)


HOSTILE = [
    # (name, method, path, body text or query params)
    ("filter 23-digit int", "POST", "/api/v1/search", '{"query": "tea", "metadata": {"n": 10000000000000000000000}}'),
    ("filter surrogate value", "POST", "/api/v1/search", '{"query": "tea", "metadata": {"n": "\\ud800"}}'),
    ("filter surrogate key", "POST", "/api/v1/search", '{"query": "tea", "metadata": {"\\ud800": 1}}'),
    ("filter 499 keys", "POST", "/api/v1/search",
     json.dumps({"query": "tea", "metadata": {f"k{i}": i for i in range(499)}})),
    ("filter 5000 brackets", "POST", "/api/v1/search", '{"query": "tea", "metadata": ' + nested_json(5000) + "}"),
    ("list 23-digit int", "GET", "/api/v1/memories", {"metadata": '{"n": 10000000000000000000000}'}),
    ("list surrogate value", "GET", "/api/v1/memories", {"metadata": '{"n": "\\ud800"}'}),
    ("list 499 keys", "GET", "/api/v1/memories", {"metadata": json.dumps({f"k{i}": i for i in range(499)})}),
    ("list 2000 brackets", "GET", "/api/v1/memories", {"metadata": nested_json(2000)}),
    ("store 5000 brackets", "POST", "/api/v1/memories",
     '{"key": "k", "content": "c", "metadata": ' + nested_json(5000) + "}"),
    ("store 500 brackets", "POST", "/api/v1/memories",
     '{"key": "k", "content": "c", "metadata": ' + nested_json(500) + "}"),
    ("store surrogate metadata", "POST", "/api/v1/memories", '{"key": "k", "content": "c", "metadata": {"x": "\\udc00"}}'),
    ("store surrogate key", "POST", "/api/v1/memories", '{"key": "k\\ud800", "content": "c"}'),
    ("search surrogate namespace", "POST", "/api/v1/search", '{"query": "tea", "namespace": "\\ud800"}'),
    ("search empty query", "POST", "/api/v1/search", '{"query": ""}'),
    ("search unbalanced quote", "POST", "/api/v1/search", '{"query": "\\"unbalanced"}'),
    ("search NEAR(", "POST", "/api/v1/search", '{"query": "NEAR("}'),
    ("search over-long query", "POST", "/api/v1/search", json.dumps({"query": "x" * (MAX_QUERY_CHARS + 1)})),
]


@pytest.mark.parametrize("name, method, path, payload", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_a_typed_4xx(world: World, name: str, method: str, path: str, payload) -> None:
    before = world.client.get("/api/v1/memories", headers=world.headers("member_a")).json()
    if method == "GET":
        r = world.client.get(path, params=payload, headers=world.headers("member_a"))
    else:
        r = post_json(world, path, payload)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    error = r.json()["error"]
    assert error["type"] in {"InvalidInput", "QuerySyntaxError"} and error["status"] == r.status_code
    assert world.client.get("/api/v1/memories", headers=world.headers("member_a")).json() == before


def test_messages_name_the_field_and_the_limit(world: World) -> None:
    many = world.client.post("/api/v1/search", json={"query": "tea", "metadata": {f"k{i}": i for i in range(499)}},
                             headers=world.headers("member_a")).json()["error"]["message"]
    assert "499 keys" in many and str(MAX_FILTER_KEYS) in many
    big = world.client.get("/api/v1/memories", params={"metadata": '{"n": 10000000000000000000000}'},
                           headers=world.headers("member_a")).json()["error"]["message"]
    assert "'n'" in big and "64-bit" in big
    deep = post_json(world, "/api/v1/memories", '{"key": "k", "content": "c", "metadata": ' + nested_json(5000) + "}")
    assert str(MAX_JSON_DEPTH) in deep.json()["error"]["message"]
    long = world.client.post("/api/v1/search", json={"query": "x" * (MAX_QUERY_CHARS + 1)},
                             headers=world.headers("member_a"))
    assert long.status_code == 400 and long.json()["error"]["type"] == "QuerySyntaxError"
    assert str(MAX_QUERY_CHARS) in long.json()["error"]["message"]
    # The schema states the same limit.
    schema = world.client.get("/openapi.json").json()["components"]["schemas"]["SearchBody"]
    assert schema["properties"]["query"]["maxLength"] == MAX_QUERY_CHARS


# -- request body limit ------------------------------------------------------------------------
def _asgi_post(app, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes]) -> tuple[int, dict, int]:
    """POST through the ASGI interface; returns (status, body, how many chunks the app read)."""
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        chunk = next(chunks, None)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/memories", "raw_path": b"/api/v1/memories", "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), read


def _auth(w: World) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {w.keys['member_a']}".encode()), (b"content-type", b"application/json")]


def test_a_declared_length_over_the_limit_is_refused_unread(small_world: World) -> None:
    status, body, read = _asgi_post(
        small_world.app, _auth(small_world) + [(b"content-length", str(LIMIT + 1).encode())], iter([b"x" * (LIMIT + 1)])
    )
    assert status == 413 and read == 0
    assert body["error"]["type"] == "ContentTooLarge" and str(LIMIT) in body["error"]["message"]
    assert "max_request_bytes" in body["error"]["message"]


def test_a_streamed_body_is_refused_once_past_the_limit(small_world: World) -> None:
    chunk = b" " * 1024
    chunks = iter([chunk] * (8 * LIMIT // len(chunk)))  # 8 times the limit, no Content-Length
    status, body, read = _asgi_post(small_world.app, _auth(small_world), chunks)
    assert status == 413 and body["error"]["type"] == "ContentTooLarge"
    assert read == LIMIT // len(chunk) + 1  # stopped at the first chunk past the limit


def test_bodies_within_the_limit_pass(small_world: World) -> None:
    r = small_world.client.post("/api/v1/memories", json={"key": "k", "content": "x" * (LIMIT - 1000)},
                                headers=small_world.headers("member_a"))
    assert r.status_code == 201


def test_a_real_chunked_upload_over_the_limit_gets_413(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_MAX_REQUEST_BYTES", str(LIMIT))
    w = build_world(tmp_path)
    try:
        with LiveServer(w.app) as live:
            def body() -> Iterator[bytes]:
                yield b'{"key": "k", "content": "'
                for _ in range(4 * LIMIT // 1024):
                    yield b"x" * 1024
                yield b'"}'

            with httpx.Client(base_url=live.url, timeout=10) as client:
                r = client.post("/api/v1/memories", content=body(), headers=w.headers("member_a"))
            assert r.status_code == 413 and r.json()["error"]["type"] == "ContentTooLarge"
    finally:
        w.tenancy.close()


# -- a 5xx does not stall the server -----------------------------------------------------------
class SlowHandler(logging.Handler):
    """A log sink that takes 50 ms a record, like a slow terminal or a full pipe."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            logging.Formatter().formatException(record.exc_info)
        time.sleep(0.05)
        self.records.append(record)


def health_times(probe: httpx.Client, futures: list[Future]) -> list[float]:
    """Seconds each /health call took while ``futures`` ran (at least three calls, each a 200)."""
    probes: list[float] = []
    while not all(f.done() for f in futures) or len(probes) < 3:
        start = time.perf_counter()
        assert probe.get("/health").status_code == 200
        probes.append(time.perf_counter() - start)
        time.sleep(0.01)
    return probes


def test_unexpected_errors_do_not_stall_health(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug, not the caller's fault")

    monkeypatch.setattr(Memory, "namespaces", broken)
    handler = SlowHandler()
    logger = logging.getLogger("engram.server")
    logger.addHandler(handler)
    w = build_world(tmp_path)
    member = w.headers("member_a")
    try:
        with (
            LiveServer(w.app) as live,
            httpx.Client(base_url=live.url, timeout=30) as probe,
            # Clients made up front: building 20 (and their TLS contexts) would itself hog this process.
            httpx.Client(base_url=live.url, timeout=30, limits=httpx.Limits(max_connections=40)) as client,
            ThreadPoolExecutor(20) as pool,
        ):
            list(pool.map(lambda _: client.get("/api/v1/memories", headers=member), range(40)))  # warm
            futures = [pool.submit(lambda: client.get("/api/v1/namespaces", headers=member).status_code)
                       for _ in range(20)]
            probes = health_times(probe, futures)
            statuses = [f.result() for f in futures]
            assert statuses == [500] * 20
            assert max(probes) < 0.1, f"/health took {max(probes) * 1000:.0f} ms while errors were logged"
            deadline = time.monotonic() + 10
            while len(handler.records) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(handler.records) == 20  # every error is logged, with its traceback
            assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in handler.records)
    finally:
        logger.removeHandler(handler)
        w.tenancy.close()


def test_a_slow_database_does_not_stall_health(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Authentication reads the database: on the event loop, 10 requests over a slow one
    (0.2 s a lookup) would hold /health for 2 s."""
    w = build_world(tmp_path)
    real = type(w.tenancy.control).authenticate

    def slow(self, key):
        time.sleep(0.2)
        return real(self, key)

    member = w.headers("member_a")
    try:
        with (
            LiveServer(w.app) as live,
            httpx.Client(base_url=live.url, timeout=30) as probe,
            httpx.Client(base_url=live.url, timeout=30, limits=httpx.Limits(max_connections=20)) as client,
            ThreadPoolExecutor(10) as pool,
        ):
            list(pool.map(lambda _: client.get("/api/v1/memories", headers=member), range(20)))  # warm
            monkeypatch.setattr(type(w.tenancy.control), "authenticate", slow)
            futures = [pool.submit(lambda: client.get("/api/v1/memories", headers=member).status_code)
                       for _ in range(10)]
            probes = health_times(probe, futures)
            assert [f.result() for f in futures] == [200] * 10
            assert max(probes) < 0.1, f"/health took {max(probes) * 1000:.0f} ms while the database was slow"
    finally:
        w.tenancy.close()
