"""The cache layer of one ``Memory``: the backend, and the views engram and its users read."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from engram.cache import EMBEDDINGS, SEARCHES, USER, namespace_for, open_cache_backend
from engram.cache.base import Cache, CacheBackend
from engram.cache.invalidation import watch_entry_writes
from engram.cache.searches import SearchCache
from engram.embeddings.cache import EmbeddingCache
from engram.stores._files import redact
from engram.stores.base import PERSISTENT

if TYPE_CHECKING:
    from engram.config import Settings
    from engram.stores.base import Store


class CacheLayer:
    """What ``storage.cache`` gives one store: ``user`` (``memory.cache``), ``embeddings``
    and, when ``search_results`` is on, ``searches`` (None otherwise).

    Args:
        backend: an open cache backend to use (shared by several stores, and not
            closed here); None opens the one the settings name.
        namespace: the key prefix of this store's values; None derives it from the store's URL.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        backend: CacheBackend | None = None,
        namespace: str | None = None,
    ):
        config = settings.storage.cache
        self.owns_backend = backend is None
        self.backend = backend or open_cache_backend(
            config, pool_timeout=settings.db_connection_settings.pool_timeout
        )
        persistent = PERSISTENT in store.capabilities
        self.namespace = namespace or namespace_for(
            redact(store.url), persistent=persistent, instance=uuid.uuid4().hex[:12]
        )
        self.user = Cache(
            self.backend,
            self.namespace + USER,
            default_ttl=config.default_ttl,
            max_value_bytes=settings.max_content_bytes,
        )
        size = settings.embedding_cache_size
        shared = (
            Cache(self.backend, self.namespace + EMBEDDINGS)
            if self.backend.shared and size > 0
            else None
        )
        self.embeddings = EmbeddingCache(size, shared)
        self.searches: SearchCache | None = None
        if config.search_results:
            self.searches = SearchCache(
                Cache(self.backend, self.namespace + SEARCHES), config.search_ttl
            )
            watch_entry_writes(store, self.searches.written)

    def clear_engram_values(self, *, embeddings: bool, searches: bool) -> int:
        """Drop engram's own cached values (the bookkeeping of the search cache stays)."""
        removed = 0
        if embeddings:
            removed += self.backend.clear(self.namespace + EMBEDDINGS)
        if searches:
            removed += self.backend.clear(self.namespace + SEARCHES + "r:")
        return removed

    def engram_sizes(self) -> dict[str, int]:
        """How many embeddings and search results this store has in the cache."""
        return {
            "embeddings": self.backend.count(self.namespace + EMBEDDINGS),
            "searches": self.backend.count(self.namespace + SEARCHES + "r:"),
        }

    def close(self) -> None:
        if self.owns_backend:
            self.backend.close()
