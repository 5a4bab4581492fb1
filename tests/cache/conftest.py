"""Fixtures of the cache tests: every backend of the cache layer, over real services.

``cache_backend`` is parametrized over ``in-memory`` and ``redis`` (Redis DB 13
at 127.0.0.1:6379, a fresh key prefix per test, its keys deleted afterwards;
skipped locally, failed on CI, when Redis is not running).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from hashlib import blake2b
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from engram.cache import Cache, CacheBackend, InMemoryCacheBackend
from tests.conftest import REDIS, REDIS_TEST_URL, require_service

CACHE_BACKENDS = ("in-memory", "redis")


def redis_cache_prefix() -> str:
    return f"engram-cache-test-{uuid.uuid4().hex[:12]}"


def drop_redis_keys(prefix: str) -> None:
    import redis

    with redis.Redis.from_url(REDIS_TEST_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_cache_settings() -> Iterator[dict]:
    """A ``storage.cache`` section for a fresh Redis key prefix (keys dropped afterwards)."""
    require_service(*REDIS)
    prefix = redis_cache_prefix()
    yield {"type": "redis", "url": REDIS_TEST_URL, "options": {"keyPrefix": prefix}}
    drop_redis_keys(prefix)


@pytest.fixture(params=CACHE_BACKENDS)
def cache_backend(request: pytest.FixtureRequest) -> Iterator[CacheBackend]:
    """An empty cache backend of each kind."""
    if request.param == "in-memory":
        yield InMemoryCacheBackend(max_entries=1000)
        return
    require_service(*REDIS)
    from engram.cache.redis import RedisCacheBackend

    prefix = redis_cache_prefix()
    backend = RedisCacheBackend(REDIS_TEST_URL, key_prefix=prefix, max_connections=8)
    yield backend
    backend.close()
    drop_redis_keys(prefix)


@pytest.fixture
def cache(cache_backend: CacheBackend) -> Cache:
    """A project's cache view over the backend under test."""
    return Cache(cache_backend, "project-a:u:")


# -- an OpenAI-compatible embeddings server ---------------------------------------


class EmbeddingsHandler(BaseHTTPRequestHandler):
    """``POST /v1/embeddings`` as OpenAI answers it; vectors derived from the text (deterministic
    in every process), and every text asked for counted in ``texts``."""

    texts: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).texts.extend(body["input"])
        data = []
        for i, text in enumerate(body["input"]):
            seed = int.from_bytes(
                blake2b(text.encode(), digest_size=4).digest(), "little"
            )
            data.append(
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": np.random.default_rng(seed).normal(size=8).tolist(),
                }
            )
        payload = json.dumps(
            {"object": "list", "data": data, "model": body["model"], "usage": {}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def embeddings_server() -> Iterator[tuple[str, list[str]]]:
    """``(base_url, texts asked for)`` of a local OpenAI-compatible embeddings server."""
    EmbeddingsHandler.texts = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EmbeddingsHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", EmbeddingsHandler.texts
    finally:
        httpd.shutdown()
        httpd.server_close()
