"""The storage contract every backend implements.

A backend implements a few primitives over plain records; ``Memory`` composes
them into the public API (validation, ids, timestamps, TTL arithmetic live in
the facade, not here). All methods are synchronous: ``AsyncMemory`` runs them
on a worker pool. Errors raised by a driver must be translated into
``engram.errors`` before they leave the store.

``Store`` is composed of one small contract per family of records
(``engram.stores.contracts``); the values they pass are in ``engram.stores.queries``
and the capability names in ``engram.stores.capabilities``, all re-exported here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from engram.models import Entry
from engram.stores.capabilities import CONVERSATION, FTS, MESSAGE_VECTOR, MULTIPROCESS, PERSISTENT, VACUUM, VECTOR
from engram.stores.contracts.blobs import BlobRows
from engram.stores.contracts.conversation import ConversationRows
from engram.stores.contracts.entries import EntryRows
from engram.stores.contracts.sessions import SessionRows
from engram.stores.contracts.vectors import VectorRows
from engram.stores.queries import (
    ENTRY_ORDERS,
    SESSION_SORTS,
    Counts,
    EntryQuery,
    MessageQuery,
    MessageVectorItem,
    MetadataFilter,
    PruneCounts,
    PrunePlan,
    RunQuery,
    SessionQuery,
    TaskQuery,
    VectorItem,
    VectorModel,
    run_conflict,
)

if TYPE_CHECKING:
    from engram.config import Settings

__all__ = [
    "CONVERSATION", "ENTRY_ORDERS", "FTS", "MESSAGE_VECTOR", "MULTIPROCESS", "PERSISTENT", "SESSION_SORTS",
    "VACUUM", "VECTOR", "Counts", "EntryQuery", "MessageQuery", "MessageVectorItem", "MetadataFilter",
    "PruneCounts", "PrunePlan", "RunQuery", "SessionQuery", "Store", "TaskQuery", "VectorItem", "VectorModel",
    "run_conflict",
]  # fmt: skip


class Store(EntryRows, SessionRows, ConversationRows, VectorRows, BlobRows):
    """A backend. Subclasses set ``capabilities`` and implement the primitives of each family."""

    def __init__(self, url: str):
        self.url = url

    @classmethod
    def from_url(cls, url: str, *, settings: "Settings | None" = None) -> "Store":
        """Open the store a URL names; ``settings`` carries what the backend may need
        beyond the URL (connection pool, timeouts). Backends override this to parse
        their own URL; None means the defaults."""
        return cls(url)  # type: ignore[call-arg]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes made inside (by this thread) as one transaction, where the backend has
        them (SQLite, PostgreSQL): all are kept or none. Elsewhere each write stays atomic
        on its own and this adds nothing. Used by import, so a failed import changes nothing.
        """
        yield

    def put_entries_with_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], *, now: datetime, model: VectorModel
    ) -> list[Entry]:
        """``put_entries`` and ``put_vectors`` as one write: both are stored or neither.

        Every built-in backend overrides this with one transaction (one
        ``MULTI``, one locked file write); this default, two writes, is for
        plug-in backends that have no way to join them.
        """
        stored = self.put_entries(entries, now=now)
        if vectors:
            self.put_vectors(vectors, model=model)
        return stored

    def vacuum(self) -> None:
        """Reclaim space; a no-op where the backend has nothing to reclaim."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files; idempotent."""
