"""The async face of a :class:`~engram.cache.base.Cache`: the same calls, awaited on a worker pool."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from typing import Any

from engram.cache.base import Cache, CacheStats


class AsyncCache:
    """``await cache.get(key)`` and the rest: each call runs the sync cache's method on ``pool``,
    as ``AsyncMemory`` does, so both behave the same."""

    def __init__(self, cache: Cache, pool: Executor):
        self.sync = cache
        self._pool = pool

    async def _run(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, functools.partial(method, *args, **kwargs)
        )

    async def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        return await self._run(self.sync.get, key, default)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a JSON-serializable ``value`` under ``key`` for ``ttl`` seconds (None: no expiry)."""
        await self._run(self.sync.set, key, value, ttl)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return await self._run(self.sync.delete, key)

    async def exists(self, key: str) -> bool:
        """Whether ``key`` holds a live value."""
        return await self._run(self.sync.exists, key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that hold one."""
        return await self._run(
            self.sync.get_many, keys if isinstance(keys, str) else list(keys)
        )

    async def set_many(
        self, items: Mapping[str, Any], ttl: float | None = None
    ) -> None:
        """Store every item, all with the same ``ttl``."""
        await self._run(self.sync.set_many, items, ttl)

    async def clear(self, prefix: str | None = None) -> int:
        """Remove this cache's keys (those starting with ``prefix`` when given); how many."""
        return await self._run(self.sync.clear, prefix)

    async def stats(self) -> CacheStats:
        """Hits, misses and live keys."""
        return await self._run(self.sync.stats)
