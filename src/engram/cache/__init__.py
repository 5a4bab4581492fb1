"""The cache layer: temporary values, in this process or shared through Redis.

``memory.cache`` is a :class:`Cache` namespaced to the project (its store);
engram keeps its own values beside it, under other prefixes of the same
backend: embeddings by model and content hash (:mod:`engram.cache.embeddings`)
and, when ``storage.cache.search_results`` is on, search results invalidated by
every write (:mod:`engram.cache.searches`). Keys of one namespace::

    <project>:u:<key>           memory.cache (what users store)
    <project>:e:<model>:<hash>  embeddings (base64 float32)
    <project>:s:<...>           search results, and the generations that invalidate them
"""

from __future__ import annotations

from hashlib import blake2b
from typing import TYPE_CHECKING

from engram.cache.base import Cache, CacheBackend, CacheStats
from engram.cache.memory import InMemoryCacheBackend

if TYPE_CHECKING:
    from engram.storage_settings import CacheSettings

USER = "u:"
EMBEDDINGS = "e:"
SEARCHES = "s:"


def open_cache_backend(
    settings: CacheSettings, *, pool_timeout: float = 30.0
) -> CacheBackend:
    """The backend ``storage.cache`` names (Redis is imported only when used).

    Raises:
        ConfigError: an unusable URL or option.
        BackendError: Redis cannot be reached.
        MissingDependency: redis-py is not installed.
    """
    if settings.type == "in-memory":
        return InMemoryCacheBackend(settings.max_entries)
    try:
        from engram.cache.redis import RedisCacheBackend
    except ImportError as exc:  # pragma: no cover - redis-py is a core dependency today
        from engram.errors import MissingDependency

        raise MissingDependency(
            "a redis cache needs redis-py: pip install 'engram[redis]'"
        ) from exc
    timeout_ms = settings.option("command_timeout_ms")
    return RedisCacheBackend(
        settings.redis_url(),
        key_prefix=str(settings.option("key_prefix", "engram-cache")),
        max_connections=settings.max_connections or 50,
        pool_timeout=pool_timeout,
        connect_timeout=(settings.connection_timeout_ms or 20_000) / 1000,
        command_timeout=None if timeout_ms is None else float(timeout_ms) / 1000,
        retries=int(settings.option("max_retries", 0)),
    )


def namespace_for(store_url: str, *, persistent: bool, instance: str) -> str:
    """The cache namespace of a store: the same for every process opening the same store.

    A store that lives only in its process (``memory://``) gets ``instance``
    added, so two of them never share search results through a shared cache.
    """
    digest = blake2b(
        store_url.encode("utf-8", "surrogatepass"), digest_size=8
    ).hexdigest()
    return f"{digest}:" if persistent else f"{digest}-{instance}:"


__all__ = [
    "EMBEDDINGS",
    "SEARCHES",
    "USER",
    "Cache",
    "CacheBackend",
    "CacheStats",
    "InMemoryCacheBackend",
    "namespace_for",
    "open_cache_backend",
]
