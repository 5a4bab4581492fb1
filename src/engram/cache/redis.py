"""The Redis cache backend: values shared by every process, expiry done by Redis itself.

Keys are ``<key_prefix>:<the view's prefix><key>``; a value is its JSON text.
``clear`` walks ``SCAN MATCH prefix*`` and removes what it finds with
``UNLINK`` (freed in the background, never blocking the server), in batches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from engram.cache.base import CacheBackend
from engram.errors import ConfigError
from engram.stores._driver_errors import translating
from engram.stores._files import redact
from engram.stores.redis.errors import REDIS_ERRORS

HOW_TO_START = (
    "start Redis (`sudo service redis-server start`, or `redis-server --daemonize yes`) "
    "or point storage.cache (url, or host and port) at a running server"
)
KEY_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
BATCH = 500
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
# Atomic max of a number under KEYS[1] (bookkeeping of the search cache).
_RAISE_TO = """
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current == nil or tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


class RedisCacheBackend(CacheBackend):
    """Values in Redis under ``key_prefix``; ``max_connections`` bounds the pool of this process.

    Args:
        url: ``redis://[user:password@]host:port/db`` (or ``rediss://``).
        key_prefix: the first part of every key (1-64 letters, digits, ``_ . -``).
        max_connections: the pool's size; a caller waits up to ``pool_timeout`` seconds for one.
        connect_timeout: seconds to wait for a connection to be made.
        command_timeout: seconds to wait for an answer (None: no limit).
        retries: attempts after a connection error or timeout, with exponential backoff.
    Raises:
        ConfigError: a malformed URL or key prefix.
        BackendError: Redis cannot be reached.
    """

    shared = True
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "engram-cache",
        max_connections: int = 50,
        pool_timeout: float = 30.0,
        connect_timeout: float = 20.0,
        command_timeout: float | None = None,
        retries: int = 0,
    ):
        if not KEY_PREFIX.match(key_prefix):
            raise ConfigError(
                f"storage.cache key prefix {key_prefix!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        self.url = redact(url)
        parts = urlsplit(url)
        self._where = (
            f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"
        )
        self.key_prefix = key_prefix + ":"
        self.max_connections = max_connections
        try:
            self._pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=pool_timeout,
                socket_connect_timeout=connect_timeout,
                socket_timeout=command_timeout,
                retry=Retry(ExponentialBackoff(), retries) if retries else None,
                decode_responses=True,
            )
        except ValueError as exc:
            raise ConfigError(
                f"invalid Redis URL for storage.cache {self.url!r}: {exc}"
            ) from exc
        self._client = redis.Redis(connection_pool=self._pool)
        self._raise_to = self._client.register_script(_RAISE_TO)
        self._closed = False
        with self._translated("connecting to the Redis cache"):
            self._client.ping()

    def describe(self) -> str:
        return f"redis ({self._where}, prefix {self.key_prefix[:-1]!r}, max {self.max_connections} connections)"

    def _translated(self, action: str) -> AbstractContextManager[None]:
        return translating(
            REDIS_ERRORS, action, where=self._where, how_to_start=HOW_TO_START
        )

    def _full(self, key: str) -> str:
        return self.key_prefix + key

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        with self._translated("reading the cache"):
            if len(keys) == 1:
                return [self._client.get(self._full(keys[0]))]
            return list(self._client.mget([self._full(k) for k in keys]))

    def set_many(self, items: Mapping[str, str], ttl: float | None) -> None:
        with self._translated("writing the cache"):
            if ttl is None and len(items) > 1:
                self._client.mset({self._full(k): v for k, v in items.items()})
                return
            px = None if ttl is None else max(1, round(ttl * 1000))
            if len(items) == 1:
                key, value = next(iter(items.items()))
                self._client.set(self._full(key), value, px=px)
                return
            pipe = self._client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(self._full(key), value, px=px)
            pipe.execute()

    def delete_many(self, keys: Sequence[str]) -> int:
        with self._translated("deleting from the cache"):
            return (
                int(self._client.unlink(*[self._full(k) for k in keys])) if keys else 0
            )

    def _scan(self, prefix: str) -> Any:
        return self._client.scan_iter(
            match=_GLOB_SPECIAL.sub(r"\\\1", self._full(prefix)) + "*", count=1000
        )

    def clear(self, prefix: str) -> int:
        removed = 0
        with self._translated("clearing the cache"):
            batch: list[str] = []
            for key in self._scan(prefix):
                batch.append(key)
                if len(batch) >= BATCH:
                    removed += int(self._client.unlink(*batch))
                    batch = []
            if batch:
                removed += int(self._client.unlink(*batch))
        return removed

    def count(self, prefix: str) -> int:
        with self._translated("counting the cache's keys"):
            return sum(1 for _ in self._scan(prefix))

    def raise_to(self, key: str, value: float) -> None:
        with self._translated("writing the cache"):
            self._raise_to(keys=[self._full(key)], args=[repr(float(value))])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.disconnect()
