"""In-process backend (``memory://``): dictionaries behind one lock.

For tests and throwaway agents; nothing survives the process. Full-text search
scores with the same BM25 as FTS5 (``engram.search.bm25``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from threading import RLock
from typing import ClassVar

from engram.config import Settings
from engram.errors import Conflict
from engram.models import Entry, Session, Task
from engram.search.bm25 import AnalyzedText, CompiledQuery
from engram.search.query import Node
from engram.stores._filters import is_live, metadata_matches
from engram.stores.base import Counts, EntryQuery, MetadataFilter, SessionQuery, Store, TaskQuery
from engram.stores.capabilities import CONVERSATION, FTS, MESSAGE_VECTOR, VECTOR
from engram.stores.memory.chat import MemoryConversation
from engram.stores.memory.message_vectors import MemoryMessageVectors
from engram.stores.memory.vectors import MemoryVectors


class MemoryStore(MemoryConversation, MemoryMessageVectors, MemoryVectors, Store):
    """Everything in dictionaries; ``memory://`` (the rest of the URL is ignored)."""

    capabilities: ClassVar[frozenset[str]] = frozenset({FTS, CONVERSATION, VECTOR, MESSAGE_VECTOR})

    def __init__(self, url: str = "memory://"):
        super().__init__(url)
        self._lock = RLock()
        self._entries: dict[tuple[str, str], Entry] = {}
        self._analyzed: dict[tuple[str, str], AnalyzedText] = {}
        # First-insert order breaks ties of updated_at, like SQLite's rowid.
        self._order: dict[tuple[str, str], int] = {}
        self._next = 0
        self._sessions: dict[str, Session] = {}
        self._tasks: dict[str, Task] = {}

    @classmethod
    def from_url(cls, url: str, *, settings: Settings | None = None) -> "MemoryStore":
        return cls(url)

    # -- entries -------------------------------------------------------------
    def put_entries(self, entries: Sequence[Entry], *, now: datetime) -> list[Entry]:
        stored = []
        with self._lock:
            for e in entries:
                ident = (e.namespace, e.key)
                old = self._entries.get(ident)
                if old is not None and is_live(old, now):
                    kept = {"id": old.id, "created_at": old.created_at}
                    if e.metadata is None:  # not given: the entry keeps its metadata
                        kept["metadata"] = old.metadata
                    e = e.model_copy(update=kept)
                elif e.metadata is None:
                    e = e.model_copy(update={"metadata": {}})
                self._entries[ident] = e
                self._analyzed[ident] = AnalyzedText.of(e.key, e.content)
                if ident not in self._order:
                    self._order[ident] = self._next
                    self._next += 1
                stored.append(e)
        return stored

    def get_entry(self, namespace: str, key: str, *, now: datetime) -> Entry | None:
        e = self._entries.get((namespace, key))
        return e if e is not None and is_live(e, now) else None

    def _live(self, namespace: str | None, now: datetime) -> list[Entry]:
        with self._lock:
            values = list(self._entries.values())
        return [e for e in values if is_live(e, now) and (namespace is None or e.namespace == namespace)]

    def list_entries(self, query: EntryQuery, *, now: datetime) -> list[Entry]:
        found = [
            e
            for e in self._live(query.namespace, now)
            if (not query.key_prefix or e.key.startswith(query.key_prefix))
            and (not query.metadata or metadata_matches(e.metadata, query.metadata))
        ]
        order = self._order
        found.sort(
            key=lambda e: (e.updated_at, order.get((e.namespace, e.key), 0)), reverse=query.order == "updated_desc"
        )
        return found[query.offset : query.offset + query.limit]

    def delete_entry(self, namespace: str, key: str, *, now: datetime) -> bool:
        with self._lock:
            e = self._entries.pop((namespace, key), None)
            self._analyzed.pop((namespace, key), None)
            self._order.pop((namespace, key), None)
        return e is not None and is_live(e, now)

    def delete_namespace(self, namespace: str, *, now: datetime) -> int:
        with self._lock:
            idents = [i for i in self._entries if i[0] == namespace]
            live = sum(1 for i in idents if is_live(self._entries[i], now))
            for ident in idents:
                del self._entries[ident]
                del self._analyzed[ident]
                del self._order[ident]
        return live

    def namespaces(self, *, now: datetime) -> list[str]:
        return sorted({e.namespace for e in self._live(None, now)})

    def namespace_counts(self, *, now: datetime) -> dict[str, int]:
        return dict(sorted(Counter(e.namespace for e in self._live(None, now)).items()))

    def search_text(
        self, query: Node, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        with self._lock:
            analyzed = dict(self._analyzed)
            entries = dict(self._entries)
        candidates = [
            (e, analyzed[ident])
            for ident, e in entries.items()
            if is_live(e, now)
            and (namespace is None or e.namespace == namespace)
            and (not metadata or metadata_matches(e.metadata, metadata))
        ]
        ranked = CompiledQuery(query).rank(candidates, list(analyzed.values()))
        return ranked[:limit]

    def prune_expired(self, *, now: datetime) -> int:
        return self._expired(now, namespace=None, drop=True)

    def prune_entries(self, *, now: datetime, namespace: str | None = None, dry_run: bool = False) -> int:
        return self._expired(now, namespace=namespace, drop=not dry_run)

    def _expired(self, now: datetime, *, namespace: str | None, drop: bool) -> int:
        """How many entries (of ``namespace``, None: all) expired by ``now``; removed when ``drop``."""
        with self._lock:
            dead = [i for i, e in self._entries.items() if not is_live(e, now) and namespace in (None, i[0])]
            if drop:
                for ident in dead:
                    del self._entries[ident]
                    del self._analyzed[ident]
                    del self._order[ident]
        return len(dead)

    def iter_entries(self, *, batch_size: int = 1000) -> Iterator[Entry]:
        with self._lock:
            values = list(self._entries.values())
        yield from values

    # -- sessions and tasks --------------------------------------------------
    def put_session(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.id] = session

    def get_session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def list_sessions(self, query: SessionQuery) -> list[Session]:
        with self._lock:
            found = [
                s
                for s in self._sessions.values()
                if (query.status is None or s.status == query.status)
                and (query.ended_before is None or (s.ended_at is not None and s.ended_at < query.ended_before))
                and (query.user_id is None or s.user_id == query.user_id)
                and (query.agent_id is None or s.agent_id == query.agent_id)
            ]
        sign = 1 if query.sort == "oldest" else -1
        found.sort(key=lambda s: (sign * s.started_at.timestamp(), s.id))
        return found[query.offset : query.offset + query.limit]

    def put_task(self, task: Task) -> None:
        with self._lock:
            if task.session_id is not None and task.session_id not in self._sessions:
                raise Conflict(f"storing a task violates a constraint: session {task.session_id} does not exist")
            self._tasks[task.id] = task

    def get_task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        with self._lock:
            found = [
                t
                for t in self._tasks.values()
                if (query.session_id is None or t.session_id == query.session_id)
                and (query.status is None or t.status == query.status)
            ]
        found.sort(key=lambda t: (-t.created_at.timestamp(), t.id))
        return found[query.offset : query.offset + query.limit]

    # -- operations ----------------------------------------------------------
    def counts(self, *, now: datetime) -> Counts:
        with self._lock:
            entries = list(self._entries.values())
            sessions, tasks = len(self._sessions), len(self._tasks)
        live = [e for e in entries if is_live(e, now)]
        return Counts(
            entries=len(live),
            namespaces=len({e.namespace for e in live}),
            sessions=sessions,
            tasks=tasks,
            expired_entries=len(entries) - len(live),
            **self._conversation_counts(),
        )

    def close(self) -> None:
        """Nothing to release; the data lives as long as this object."""
