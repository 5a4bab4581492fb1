"""``Memory`` and ``AsyncMemory``: the one facade every front end calls.

The facade validates arguments, assigns ids and timestamps, and composes the
primitives of a ``Store``. ``AsyncMemory`` runs the very same methods on a
bounded worker pool, so both APIs behave identically.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engram import validation as check
from engram._time import utcnow
from engram.config import Settings, load_settings
from engram.errors import Conflict, InvalidInput, NotFound
from engram.models import Entry, PruneReport, SearchHit, SearchResult, Session, Stats, Task
from engram.search.query import parse
from engram.stores.base import EntryQuery, SessionQuery, Store, TaskQuery
from engram.stores.registry import store_class

SESSION_STATUSES = ("active", "ended", "error")
END_STATUSES = ("ended", "error")
TASK_STATUSES = ("pending", "running", "completed", "failed")
FINISHED_TASK_STATUSES = ("completed", "failed")
_ITEM_FIELDS = frozenset({"key", "content", "metadata", "namespace", "ttl"})

Progress = Callable[[int], None]


def open_store(url: str) -> Store:
    """Open the backend for ``url`` (imports its module on first use)."""
    return store_class(url).from_url(url)


class Memory:
    """Persistent memory for agents, over the backend named by a URL.

    ``Memory("sqlite:///agent.db")``, ``Memory("memory://")``, or ``Memory()``
    for ``ENGRAM_DATABASE_URL`` / the config file / the default SQLite file.
    Use it as a context manager or call :meth:`close`. ``backend`` takes an
    already opened :class:`~engram.stores.base.Store` instead of a URL.
    """

    def __init__(self, url: str | None = None, *, settings: Settings | None = None, backend: Store | None = None):
        self.settings = settings or load_settings(database_url=url)
        if url is not None and settings is not None:
            self.settings = self.settings.model_copy(update={"database_url": url})
        self.backend = backend or open_store(self.settings.database_url)
        self._max_bytes = self.settings.max_content_bytes

    @property
    def url(self) -> str:
        return self.backend.url

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections and files. Safe to call twice."""
        self.backend.close()

    def __repr__(self) -> str:
        return f"Memory({self.url!r})"

    # -- entries ---------------------------------------------------------------
    def _entry(self, key: Any, content: Any, namespace: Any, metadata: Any, ttl: Any, now: datetime) -> Entry:
        seconds = check.ttl(ttl)
        return Entry.model_construct(
            id=str(uuid.uuid4()),
            key=check.name("key", key),
            namespace=check.name("namespace", namespace),
            content=check.content(content, self._max_bytes),
            metadata=check.metadata(metadata, self._max_bytes),
            created_at=now,
            updated_at=now,
            expires_at=None if seconds is None else now + timedelta(seconds=seconds),
        )

    def store(
        self,
        key: str,
        content: str,
        *,
        namespace: str = "default",
        metadata: dict[str, Any] | None = None,
        ttl: float | None = None,
    ) -> Entry:
        """Store (upsert) one memory under ``(namespace, key)``.

        An existing entry keeps its id and created_at; content, metadata and
        expiry are replaced and updated_at moves.

        Args:
            ttl: seconds until the entry expires; None keeps it forever.
        Raises:
            InvalidInput: a bad key, namespace, metadata or ttl.
            ContentTooLarge: content over ``max_content_bytes``.
        """
        now = utcnow()
        entry = self._entry(key, content, namespace, metadata, ttl, now)
        return self.backend.put_entries([entry], now=now)[0]

    def store_many(self, items: Iterable[Mapping[str, Any]], *, namespace: str = "default") -> int:
        """Store many memories in one transaction; returns how many were stored.

        Each item is a dict with ``key`` and ``content`` and optionally
        ``metadata``, ``namespace`` (default: the ``namespace`` argument) and ``ttl``.
        Nothing is stored when any item is invalid.
        """
        now = utcnow()
        entries = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidInput(f"item {i} must be a dict with key and content, not {type(item).__name__}")
            unknown = set(item) - _ITEM_FIELDS
            if unknown:
                raise InvalidInput(
                    f"item {i} has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"allowed: {', '.join(sorted(_ITEM_FIELDS))}"
                )
            for required in ("key", "content"):
                if required not in item:
                    raise InvalidInput(f"item {i} has no {required}")
            try:
                entries.append(
                    self._entry(
                        item["key"],
                        item["content"],
                        item.get("namespace", namespace),
                        item.get("metadata"),
                        item.get("ttl"),
                        now,
                    )
                )
            except InvalidInput as exc:
                raise type(exc)(f"item {i}: {exc}") from None
        if entries:
            self.backend.put_entries(entries, now=now)
        return len(entries)

    def get(self, key: str, *, namespace: str = "default") -> Entry | None:
        """The live entry under ``(namespace, key)``, or None."""
        return self.backend.get_entry(check.name("namespace", namespace), check.name("key", key), now=utcnow())

    def list(
        self,
        *,
        namespace: str | None = None,
        limit: int = 20,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
        key_prefix: str | None = None,
    ) -> builtins.list[Entry]:
        """Live entries, newest updated first; ``metadata={"k": v}`` filters by equality."""
        query = EntryQuery(
            namespace=None if namespace is None else check.name("namespace", namespace),
            limit=check.limit(limit),
            offset=check.offset(offset),
            metadata=check.metadata_filter(metadata),
            key_prefix=None if key_prefix is None else check.name("key_prefix", key_prefix),
        )
        return self.backend.list_entries(query, now=utcnow())

    def delete(self, key: str, *, namespace: str = "default") -> bool:
        """Delete one entry; True when it existed."""
        return self.backend.delete_entry(check.name("namespace", namespace), check.name("key", key), now=utcnow())

    def delete_namespace(self, namespace: str) -> int:
        """Delete every entry of ``namespace``; returns how many were deleted."""
        return self.backend.delete_namespace(check.name("namespace", namespace), now=utcnow())

    def namespaces(self) -> builtins.list[str]:
        """Namespaces holding at least one live entry, sorted."""
        return self.backend.namespaces(now=utcnow())

    # -- search ----------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        namespace: str | None = None,
        limit: int = 10,
        metadata: dict[str, Any] | None = None,
    ) -> SearchResult:
        """Full-text search (BM25 over key and content), best first.

        Query language: words (all must match, stemmed, case-insensitive),
        ``"exact phrase"``, ``a AND b``, ``a OR b``, ``prefix*``, ``-excluded``
        or ``NOT excluded``, and parentheses.

        Raises:
            QuerySyntaxError: the query cannot be parsed; the message says why.
        """
        tree = parse(query)
        hits = self.backend.search_text(
            tree,
            namespace=None if namespace is None else check.name("namespace", namespace),
            metadata=check.metadata_filter(metadata),
            limit=check.limit(limit),
            now=utcnow(),
        )
        results = [SearchHit.model_construct(entry=e, score=s, match_type="fts") for e, s in hits]
        return SearchResult.model_construct(count=len(results), results=results)

    # -- sessions --------------------------------------------------------------
    def session_start(self, metadata: dict[str, Any] | None = None) -> Session:
        """Start a new active session."""
        session = Session.model_construct(
            id=str(uuid.uuid4()),
            status="active",
            metadata=check.metadata(metadata, self._max_bytes),
            started_at=utcnow(),
            ended_at=None,
        )
        self.backend.put_session(session)
        return session

    def _session(self, session_id: Any) -> Session:
        session = self.backend.get_session(check.identifier("session id", session_id))
        if session is None:
            raise NotFound(f"session {session_id} does not exist")
        return session

    def session_end(self, id: str, status: str = "ended") -> Session:
        """End an active session as ``ended`` or ``error``.

        Raises:
            NotFound: no such session.
            Conflict: the session has already ended.
        """
        check.choice("status", status, END_STATUSES)
        session = self._session(id)
        if session.status != "active":
            raise Conflict(f"session {id} already ended with status {session.status}")
        ended = session.model_copy(update={"status": status, "ended_at": utcnow()})
        self.backend.put_session(ended)
        return ended

    def session_get(self, id: str) -> Session | None:
        """The session, or None."""
        return self.backend.get_session(check.identifier("session id", id))

    def sessions(
        self,
        status: str | None = None,
        ended_before: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> builtins.list[Session]:
        """Sessions, newest started first, filtered by status and end time."""
        if status is not None:
            check.choice("status", status, SESSION_STATUSES)
        if ended_before is not None and not isinstance(ended_before, datetime):
            raise InvalidInput(f"ended_before must be a datetime, not {type(ended_before).__name__}")
        return self.backend.list_sessions(
            SessionQuery(status=status, ended_before=ended_before, limit=check.limit(limit), offset=check.offset(offset))
        )

    # -- tasks -----------------------------------------------------------------
    def task_create(self, agent_type: str, input: Any, *, session_id: str | None = None) -> Task:
        """Create a pending task, optionally inside an existing session.

        Raises:
            NotFound: ``session_id`` names no session.
        """
        check.name("agent_type", agent_type)
        check.json_value("input", input, self._max_bytes)
        if session_id is not None:
            self._session(session_id)
        now = utcnow()
        task = Task.model_construct(
            id=str(uuid.uuid4()),
            agent_type=agent_type,
            input=input,
            output=None,
            status="pending",
            session_id=session_id,
            created_at=now,
            updated_at=now,
            completed_at=None,
        )
        self.backend.put_task(task)
        return task

    def task_update(self, id: str, status: str, output: Any = None) -> Task:
        """Move a task to ``status``; completed/failed set completed_at. ``output=None`` keeps the output."""
        check.choice("status", status, TASK_STATUSES)
        if output is not None:
            check.json_value("output", output, self._max_bytes)
        task = self.task_get(id)
        if task is None:
            raise NotFound(f"task {id} does not exist")
        now = utcnow()
        updated = task.model_copy(
            update={
                "status": status,
                "output": task.output if output is None else output,
                "updated_at": now,
                "completed_at": now if status in FINISHED_TASK_STATUSES else None,
            }
        )
        self.backend.put_task(updated)
        return updated

    def task_get(self, id: str) -> Task | None:
        """The task, or None."""
        return self.backend.get_task(check.identifier("task id", id))

    def tasks(
        self, session_id: str | None = None, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> builtins.list[Task]:
        """Tasks, newest created first, filtered by session and status."""
        if status is not None:
            check.choice("status", status, TASK_STATUSES)
        if session_id is not None:
            check.identifier("session id", session_id)
        return self.backend.list_tasks(
            TaskQuery(session_id=session_id, status=status, limit=check.limit(limit), offset=check.offset(offset))
        )

    # -- operations --------------------------------------------------------------
    def prune(self) -> PruneReport:
        """Remove expired entries for good (they are already invisible to reads)."""
        return PruneReport(expired_entries=self.backend.prune_expired(now=utcnow()))

    def stats(self) -> Stats:
        """Counts of what the store holds."""
        c = self.backend.counts(now=utcnow())
        return Stats(
            url=self.url,
            entries=c.entries,
            namespaces=c.namespaces,
            sessions=c.sessions,
            tasks=c.tasks,
            expired_entries=c.expired_entries,
            size_bytes=c.size_bytes,
        )

    def vacuum(self) -> None:
        """Reclaim space and optimize indexes."""
        self.backend.vacuum()

    def export(self, path: str | Path, *, progress: Progress | None = None) -> dict[str, int]:
        """Write every record to a versioned JSONL file; returns counts per kind."""
        from engram.transfer import export_jsonl

        return export_jsonl(self, Path(path), progress=progress)

    def import_(self, path: str | Path, *, progress: Progress | None = None) -> dict[str, int]:
        """Load a JSONL export; idempotent (re-importing changes nothing). Returns counts per kind."""
        from engram.transfer import import_jsonl

        return import_jsonl(self, Path(path), progress=progress)


def _run_in_pool(name: str) -> Callable[..., Any]:
    method = getattr(Memory, name)

    @functools.wraps(method)
    async def call(self: "AsyncMemory", *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(method, self._memory, *args, **kwargs))

    return call


class AsyncMemory:
    """The async twin of :class:`Memory`: the same methods, awaited.

    ``async with AsyncMemory("memory://") as m: await m.store("k", "v")``.
    Calls run on a bounded worker pool (``settings.async_workers`` threads).
    """

    def __init__(self, url: str | None = None, *, settings: Settings | None = None, backend: Store | None = None):
        self._memory = Memory(url, settings=settings, backend=backend)
        self._pool = ThreadPoolExecutor(
            max_workers=self._memory.settings.async_workers, thread_name_prefix="engram"
        )

    @property
    def url(self) -> str:
        return self._memory.url

    @property
    def sync(self) -> Memory:
        """The synchronous facade behind this one."""
        return self._memory

    async def __aenter__(self) -> "AsyncMemory":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish running calls, then release connections and files."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._pool.shutdown, wait=True))
        self._memory.close()

    def __repr__(self) -> str:
        return f"AsyncMemory({self.url!r})"

    store = _run_in_pool("store")
    store_many = _run_in_pool("store_many")
    get = _run_in_pool("get")
    list = _run_in_pool("list")
    delete = _run_in_pool("delete")
    delete_namespace = _run_in_pool("delete_namespace")
    namespaces = _run_in_pool("namespaces")
    search = _run_in_pool("search")
    session_start = _run_in_pool("session_start")
    session_end = _run_in_pool("session_end")
    session_get = _run_in_pool("session_get")
    sessions = _run_in_pool("sessions")
    task_create = _run_in_pool("task_create")
    task_update = _run_in_pool("task_update")
    task_get = _run_in_pool("task_get")
    tasks = _run_in_pool("tasks")
    prune = _run_in_pool("prune")
    stats = _run_in_pool("stats")
    vacuum = _run_in_pool("vacuum")
    export = _run_in_pool("export")
    import_ = _run_in_pool("import_")
