"""The storage contract every backend implements.

A backend implements a few primitives over plain records; ``Memory`` composes
them into the public API (validation, ids, timestamps, TTL arithmetic live in
the facade, not here). All methods are synchronous: ``AsyncMemory`` runs them
on a worker pool. Errors raised by a driver must be translated into
``engram.errors`` before they leave the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from engram.models import Entry, Session, Task
from engram.search.query import Node

# Capabilities a backend may declare. The conformance suite skips exactly the
# tests of capabilities a backend lacks, and the docs table is built from these.
FTS = "fts"  # full-text search with the query language
MULTIPROCESS = "multiprocess"  # several processes may share one store safely
PERSISTENT = "persistent"  # data outlives the process
VACUUM = "vacuum"  # vacuum() reclaims space

MetadataFilter = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntryQuery:
    """What ``list`` asks for; ``namespace=None`` means every namespace."""

    namespace: str | None = None
    limit: int = 20
    offset: int = 0
    metadata: MetadataFilter = field(default_factory=dict)
    key_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class SessionQuery:
    status: str | None = None
    ended_before: datetime | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class TaskQuery:
    session_id: str | None = None
    status: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Counts:
    entries: int
    namespaces: int
    sessions: int
    tasks: int
    expired_entries: int
    size_bytes: int | None = None


class Store(ABC):
    """A backend. Subclasses set ``capabilities`` and implement the primitives."""

    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, url: str):
        self.url = url

    # -- entries -----------------------------------------------------------
    @abstractmethod
    def put_entries(self, entries: Sequence[Entry], *, now: datetime) -> list[Entry]:
        """Upsert entries on (namespace, key) in one transaction.

        An existing live entry keeps its id and created_at; an expired one is
        replaced as if new. Returns the entries as stored, in input order.
        """

    @abstractmethod
    def get_entry(self, namespace: str, key: str, *, now: datetime) -> Entry | None:
        """The live entry, or None when absent or expired."""

    @abstractmethod
    def list_entries(self, query: EntryQuery, *, now: datetime) -> list[Entry]:
        """Live entries matching ``query``, newest updated first."""

    @abstractmethod
    def delete_entry(self, namespace: str, key: str, *, now: datetime) -> bool:
        """Delete one entry; True when it existed and was live."""

    @abstractmethod
    def delete_namespace(self, namespace: str, *, now: datetime) -> int:
        """Delete every entry of a namespace; returns how many live ones went."""

    @abstractmethod
    def namespaces(self, *, now: datetime) -> list[str]:
        """Namespaces that hold at least one live entry, sorted."""

    @abstractmethod
    def search_text(
        self,
        query: Node,
        *,
        namespace: str | None,
        metadata: MetadataFilter,
        limit: int,
        now: datetime,
    ) -> list[tuple[Entry, float]]:
        """BM25 full-text search over key and content; higher score is better."""

    @abstractmethod
    def prune_expired(self, *, now: datetime) -> int:
        """Remove expired entries; returns how many."""

    @abstractmethod
    def iter_entries(self, *, batch_size: int = 1000) -> Iterator[Entry]:
        """Every stored entry, expired ones included (for export and copy)."""

    # -- sessions and tasks -------------------------------------------------
    @abstractmethod
    def put_session(self, session: Session) -> None:
        """Insert or replace a session by id."""

    @abstractmethod
    def get_session(self, session_id: str) -> Session | None: ...

    @abstractmethod
    def list_sessions(self, query: SessionQuery) -> list[Session]:
        """Sessions matching ``query``, newest started first."""

    @abstractmethod
    def put_task(self, task: Task) -> None:
        """Insert or replace a task by id; its session must exist."""

    @abstractmethod
    def get_task(self, task_id: str) -> Task | None: ...

    @abstractmethod
    def list_tasks(self, query: TaskQuery) -> list[Task]:
        """Tasks matching ``query``, newest created first."""

    def iter_sessions(self, *, batch_size: int = 1000) -> Iterator[Session]:
        """Every session (for export and copy)."""
        offset = 0
        while batch := self.list_sessions(SessionQuery(limit=batch_size, offset=offset)):
            yield from batch
            offset += len(batch)

    def iter_tasks(self, *, batch_size: int = 1000) -> Iterator[Task]:
        """Every task (for export and copy)."""
        offset = 0
        while batch := self.list_tasks(TaskQuery(limit=batch_size, offset=offset)):
            yield from batch
            offset += len(batch)

    # -- operations ----------------------------------------------------------
    @abstractmethod
    def counts(self, *, now: datetime) -> Counts: ...

    def vacuum(self) -> None:
        """Reclaim space; a no-op where the backend has nothing to reclaim."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files; idempotent."""
