"""``Memory`` and ``AsyncMemory``: the one facade every front end calls.

The facade validates arguments, assigns ids and timestamps, and composes the
primitives of a ``Store``. ``AsyncMemory`` runs the very same methods on a
bounded worker pool, so both APIs behave identically.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import operator
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from itertools import repeat
from pathlib import Path
from typing import Any

from engram import kinds as record_kinds
from engram import validation as check
from engram._gc_pause import gc_paused
from engram._chat_api import ConversationAPI
from engram._runs_api import RunsAPI
from engram._semantic import SemanticAPI, as_vector
from engram._time import utcnow
from engram.config import Settings, load_settings
from engram.errors import Conflict, InvalidInput, NotFound
from engram.models import Entry, PruneReport, SearchResult, Session, Stats, Task
from engram.stores.base import ENTRY_ORDERS, SESSION_SORTS, EntryQuery, PrunePlan, SessionQuery, Store, TaskQuery
from engram.stores.registry import store_class

SESSION_STATUSES = ("active", "ended", "error")
END_STATUSES = ("ended", "error")
TASK_STATUSES = ("pending", "running", "completed", "failed")
FINISHED_TASK_STATUSES = ("completed", "failed")
_ITEM_FIELDS = frozenset({"key", "content", "metadata", "namespace", "ttl", "embedding"})
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=timezone.utc)  # after every record's created_at

Progress = Callable[[int], None]


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_random = threading.local()  # per thread: a buffer of os.urandom bytes, as hex, and where it is read


def _new_id() -> str:
    """A random UUID4 as text: ``str(uuid.uuid4())`` (same bits) in a third of the time.

    The bits come from ``os.urandom`` 256 ids at a time (one system call
    each, not one per id: bulk writes take an id per entry).
    """
    local = _random.__dict__
    at = local.get("at", 4096)
    if at >= 4096:
        local["hex"], at = os.urandom(2048).hex(), 0
    local["at"] = at + 32
    h = local["hex"][at : at + 32]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _forget_random() -> None:
    _random.__dict__.clear()  # a forked child must not hand out the ids its parent will


os.register_at_fork(after_in_child=_forget_random)


_set = object.__setattr__
_new_model = Entry.__new__  # bound once: looking it up on the model class goes through pydantic's metaclass
_ENTRY_FIELDS = set(Entry.model_fields)


def _built_entry(fields: dict[str, Any]) -> Entry:
    """What ``Entry.model_construct(**fields)`` builds when every field is given, without
    its loop over fields and defaults: a quarter of the time, paid by every write."""
    entry = _new_model(Entry)
    _set(entry, "__dict__", fields)
    _set(entry, "__pydantic_fields_set__", _ENTRY_FIELDS.copy())
    _set(entry, "__pydantic_extra__", None)
    _set(entry, "__pydantic_private__", None)
    return entry


def open_store(url: str, settings: Settings | None = None) -> Store:
    """Open the backend for ``url`` (imports its module on first use).

    ``settings`` gives the backend what it needs beyond the URL (pool sizes,
    timeouts); None means the defaults.
    """
    return store_class(url).from_url(url, settings=settings)


class Memory(ConversationAPI, RunsAPI, SemanticAPI):
    """Persistent memory for agents, over the backend named by a URL.

    ``Memory("sqlite:///agent.db")``, ``Memory("memory://")``, or ``Memory()``
    for ``ENGRAM_DATABASE_URL`` / the config file / the default SQLite file.
    Use it as a context manager or call :meth:`close`. ``backend`` takes an
    already opened :class:`~engram.stores.base.Store` instead of a URL.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        backend: Store | None = None,
        check_embedder: bool = True,
    ):
        self.settings = settings or load_settings(database_url=url)
        if url is not None and settings is not None:
            self.settings = self.settings.model_copy(update={"database_url": url})
        self.backend = backend or open_store(self.settings.database_url, self.settings)
        self._max_bytes = self.settings.max_content_bytes
        try:
            # Refuses a store whose vectors come from another model than the
            # embedder configured (``check_embedder=False`` is for reindex).
            self._init_semantic(check_embedder=check_embedder)
        except BaseException:
            self.backend.close()
            raise

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
        seconds = None if ttl is None else check.ttl(ttl)
        return _built_entry(
            {
                "id": _new_id(),
                "key": check.name("key", key),
                "namespace": check.name("namespace", namespace),
                "content": check.content(content, self._max_bytes),
                # None (not given) tells the store to keep an existing entry's metadata.
                "metadata": None if metadata is None else check.metadata(metadata, self._max_bytes),
                "created_at": now,
                "updated_at": now,
                "expires_at": None if seconds is None else now + timedelta(seconds=seconds),
            }
        )

    def store(
        self,
        key: str,
        content: str,
        *,
        namespace: str = "default",
        metadata: dict[str, Any] | None = None,
        ttl: float | None = None,
        embed: bool | None = None,
        embedding: Any = None,
    ) -> Entry:
        """Store (upsert) one memory under ``(namespace, key)``.

        An existing entry keeps its id and created_at; content and expiry are
        replaced and updated_at moves. Metadata is replaced when given:
        ``metadata=None`` (the default) keeps the existing entry's metadata
        ({} for a new entry), ``metadata={}`` clears it. Changed content drops
        the old embedding; the new one is computed before anything is written.

        Args:
            ttl: seconds until the entry expires; None keeps it forever.
            embed: None embeds the content when an embedder is configured;
                False never; True requires an embedder.
            embedding: a precomputed vector (list of floats or numpy array)
                of the store's dimensions, instead of embedding here.
        Raises:
            InvalidInput: a bad key, namespace, metadata, ttl or embedding size.
            ContentTooLarge: content over ``max_content_bytes``.
        """
        now = utcnow()
        entry = self._entry(key, content, namespace, metadata, ttl, now)
        if embedding is None and not embed and self.embedder is None:
            return self.backend.put_entries([entry], now=now)[0]  # nothing to embed: the short way
        given = None if embedding is None else as_vector(embedding)
        vectors = self._vectors_for([entry], [given], embed)
        stored = self._put_with_vectors([entry], vectors, now)[0]
        return stored

    def store_many(
        self, items: Iterable[Mapping[str, Any]], *, namespace: str = "default", embed: bool | None = None
    ) -> int:
        """Store many memories in one transaction; returns how many were stored.

        Each item is a dict with ``key`` and ``content`` and optionally
        ``metadata`` (left out or None keeps an existing entry's metadata, as
        in :meth:`store`), ``namespace`` (default: the ``namespace`` argument),
        ``ttl`` and ``embedding`` (a precomputed vector). Items without one
        are embedded in batches when an embedder is configured (``embed`` as
        in :meth:`store`). Nothing is stored when any item is invalid.
        """
        now = utcnow()
        with gc_paused():  # not while embedding: that may take minutes
            entries, given = self._entries_of(items, namespace, now)
        if entries:
            # Nothing to embed and no vector given (checked at C speed; `is`, since vectors may be arrays).
            nothing = not embed and self.embedder is None and all(map(operator.is_, given, repeat(None)))
            vectors = [] if nothing else self._vectors_for(entries, given, embed)
            with gc_paused():
                self._put_with_vectors(entries, vectors, now)
        return len(entries)

    def _entries_of(
        self, items: Iterable[Mapping[str, Any]], namespace: str, now: datetime
    ) -> tuple[builtins.list[Entry], builtins.list[Any]]:
        """The checked entries of ``store_many`` items, and the vectors given with them."""
        entries = []
        given: builtins.list[Any] = []
        new_entry = self._entry
        for i, item in enumerate(items):
            # type() first: the Mapping ABC check costs more than the rest of the loop.
            if type(item) is not dict and not isinstance(item, Mapping):
                raise InvalidInput(f"item {i} must be a dict with key and content, not {type(item).__name__}")
            if not _ITEM_FIELDS.issuperset(item):
                unknown = set(item) - _ITEM_FIELDS
                raise InvalidInput(
                    f"item {i} has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"allowed: {', '.join(sorted(_ITEM_FIELDS))}"
                )
            if "key" not in item or "content" not in item:
                raise InvalidInput(f"item {i} has no {'key' if 'key' not in item else 'content'}")
            get = item.get
            try:
                entries.append(
                    new_entry(item["key"], item["content"], get("namespace", namespace), get("metadata"), get("ttl"), now)
                )
                embedding = get("embedding")
                given.append(None if embedding is None else as_vector(embedding))
            except InvalidInput as exc:
                raise type(exc)(f"item {i}: {exc}") from None
        return entries, given

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
        order: str = "updated_desc",
    ) -> builtins.list[Entry]:
        """Live entries; ``metadata={"k": v}`` filters by equality.

        Args:
            order: ``"updated_desc"`` (newest updated first, the default) or
                ``"updated_asc"`` (oldest first: the same listing reversed).
        Raises:
            InvalidInput: a bad namespace, limit, offset, metadata filter, key_prefix or order.
        """
        query = EntryQuery(
            namespace=None if namespace is None else check.name("namespace", namespace),
            limit=check.limit(limit),
            offset=check.offset(offset),
            metadata=check.metadata_filter(metadata),
            key_prefix=None if key_prefix is None else check.name("key_prefix", key_prefix),
            order=check.choice("order", order, ENTRY_ORDERS),
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

    def namespace_counts(self) -> dict[str, int]:
        """Live entries per namespace (expired ones excluded), sorted by namespace.

        Holds exactly the namespaces :meth:`namespaces` lists; one query, not one per namespace.
        """
        return self.backend.namespace_counts(now=utcnow())

    # -- search ----------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        namespace: str | None = None,
        limit: int = 10,
        metadata: dict[str, Any] | None = None,
        mode: str = "auto",
        threshold: float | None = None,
        vector: Any = None,
    ) -> SearchResult:
        """Search by words, by meaning, or both, best first.

        Modes: ``fts`` (BM25 over key and content, with the query language:
        words must all match, stemmed, case-insensitive; ``"exact phrase"``,
        ``a AND b``, ``a OR b``, ``prefix*``, ``-excluded`` or ``NOT excluded``,
        parentheses); ``vector`` (cosine similarity to the query's embedding,
        or to ``vector``); ``hybrid`` (both lists fused by rank; a question
        without operators is searched as the OR of its content words);
        ``auto`` (hybrid when the namespace has embeddings and a query vector
        can be had, else fts). The query is parsed first in every mode, and
        every hit of every mode honours its exclusions, phrases and prefixes.
        In hybrid mode an entry found by meaning alone needs a cosine
        similarity of at least ``threshold``, or without one the
        ``search_relevance_floor`` setting (0.2), so a query that matches
        nothing finds nothing.

        Args:
            threshold: drop vector candidates whose cosine similarity is below it.
            vector: a precomputed query embedding, instead of embedding ``query``
                (``query`` may then be empty).
        Raises:
            QuerySyntaxError: the query is malformed, empty or over 4096 characters; the message says why.
            InvalidInput: a bad mode, threshold or vector, or vector search without an embedder.
            Unsupported: vector or hybrid mode on a backend without vector search.
        """
        return self._search(
            query, namespace=namespace, limit=limit, metadata=metadata, mode=mode, threshold=threshold, vector=vector
        )

    # -- sessions --------------------------------------------------------------
    def session_start(
        self, metadata: dict[str, Any] | None = None, *, user_id: str | None = None, agent_id: str | None = None
    ) -> Session:
        """Start a new active session, optionally of a user and an agent."""
        session = Session.model_construct(
            id=str(uuid.uuid4()),
            status="active",
            metadata=check.metadata(metadata, self._max_bytes),
            started_at=utcnow(),
            ended_at=None,
            user_id=None if user_id is None else check.name("user_id", user_id),
            agent_id=None if agent_id is None else check.name("agent_id", agent_id),
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
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        sort: str = "newest",
    ) -> builtins.list[Session]:
        """Sessions filtered by status, end time, user and agent, paged.

        Args:
            sort: ``newest`` (started last first, the default) or ``oldest`` (started first first).
        Raises:
            InvalidInput: a bad status, sort, user_id, agent_id, limit or offset.
        """
        check.choice("sort", sort, SESSION_SORTS)
        for field, value in (("user_id", user_id), ("agent_id", agent_id)):
            if value is not None:
                check.name(field, value)
        if status is not None:
            check.choice("status", status, SESSION_STATUSES)
        if ended_before is not None and not isinstance(ended_before, datetime):
            raise InvalidInput(f"ended_before must be a datetime, not {type(ended_before).__name__}")
        if ended_before is not None and ended_before.tzinfo is None:
            ended_before = ended_before.replace(tzinfo=timezone.utc)  # naive means UTC, as stored
        return self.backend.list_sessions(
            SessionQuery(
                status=status, ended_before=ended_before, limit=check.limit(limit), offset=check.offset(offset),
                user_id=user_id, agent_id=agent_id, sort=sort,
            )
        )

    def session_metadata(self, id: str) -> dict[str, Any]:
        """A session's metadata.

        Raises:
            NotFound: no such session.
        """
        return dict(self._session(id).metadata)

    def session_update(self, id: str, metadata: dict[str, Any], *, replace: bool = False) -> Session:
        """Merge ``metadata`` into a session's (a key set to None is removed), or ``replace`` it.

        Raises:
            NotFound: no such session.
            InvalidInput: metadata that is not a JSON object of valid keys.
        """
        session = self._session(id)
        if not isinstance(metadata, Mapping):
            raise InvalidInput(f"metadata must be a dict, not {type(metadata).__name__}")
        merged = dict(metadata) if replace else {**session.metadata, **metadata}
        merged = {k: v for k, v in merged.items() if v is not None}
        updated = session.model_copy(update={"metadata": check.metadata(merged, self._max_bytes)})
        self.backend.put_session(updated)
        return updated

    def session_delete(self, id: str) -> bool:
        """Delete a session with its messages (and their vectors), summary, checkpoints, runs and tasks.

        The profile of its user stays: it belongs to the user, not to one session.
        Returns True when the session existed.
        """
        session_id = check.identifier("session id", id)
        if self.backend.get_session(session_id) is None:
            return False
        # Retention already removes a session with everything it holds, in every backend.
        self.backend.prune_conversation(PrunePlan(before=_END_OF_TIME, session_id=session_id, any_status=True))
        return True

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
    def prune(
        self,
        *,
        older_than_days: float | None = None,
        keep_last_per_session: int | None = None,
        namespace: str | None = None,
        session_id: str | None = None,
        dry_run: bool = False,
    ) -> PruneReport:
        """Remove expired entries for good, and old conversation records when asked.

        With no arguments only expired entries go (they are already invisible).
        ``older_than_days`` also removes messages and checkpoints created, and
        sessions (with their tasks, messages, summary, checkpoints) ended, that
        many days ago; ``keep_last_per_session`` keeps only the newest N messages
        of each session. ``namespace`` limits the entries pruned, ``session_id``
        the conversation records; naming only one leaves the other kind alone.
        ``dry_run`` counts what would go and removes nothing.
        """
        return self._prune(
            older_than_days=older_than_days,
            keep_last_per_session=keep_last_per_session,
            namespace=namespace,
            session_id=session_id,
            dry_run=dry_run,
        )

    def stats(self) -> Stats:
        """Counts of what the store holds."""
        c = self.backend.counts(now=utcnow())
        # One count per field of Counts that counts a kind (engram.kinds), expired entries apart.
        per_kind = {field: getattr(c, field) for kind in record_kinds.COUNTED for field in kind.counts}
        return Stats(
            url=self.url,
            namespaces=c.namespaces,
            size_bytes=c.size_bytes,
            vectors=self.backend.count_vectors(None),
            embedding_model=None if (m := self.backend.vector_model()) is None else m.name,
            **per_kind,
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
    namespace_counts = _run_in_pool("namespace_counts")
    search = _run_in_pool("search")
    reindex = _run_in_pool("reindex")
    embed = _run_in_pool("embed")
    session_start = _run_in_pool("session_start")
    session_end = _run_in_pool("session_end")
    session_get = _run_in_pool("session_get")
    sessions = _run_in_pool("sessions")
    session_metadata = _run_in_pool("session_metadata")
    session_update = _run_in_pool("session_update")
    session_delete = _run_in_pool("session_delete")
    task_create = _run_in_pool("task_create")
    task_update = _run_in_pool("task_update")
    task_get = _run_in_pool("task_get")
    tasks = _run_in_pool("tasks")
    prune = _run_in_pool("prune")
    add_message = _run_in_pool("add_message")
    add_messages = _run_in_pool("add_messages")
    message_get = _run_in_pool("message_get")
    history = _run_in_pool("history")
    delete_history = _run_in_pool("delete_history")
    search_messages = _run_in_pool("search_messages")
    summary = _run_in_pool("summary")
    summary_save = _run_in_pool("summary_save")
    profile = _run_in_pool("profile")
    profile_save = _run_in_pool("profile_save")
    profile_delete = _run_in_pool("profile_delete")
    checkpoint_save = _run_in_pool("checkpoint_save")
    checkpoint_get = _run_in_pool("checkpoint_get")
    checkpoints = _run_in_pool("checkpoints")
    checkpoint_resume = _run_in_pool("checkpoint_resume")
    checkpoint_delete = _run_in_pool("checkpoint_delete")
    run_start = _run_in_pool("run_start")
    run_get = _run_in_pool("run_get")
    runs = _run_in_pool("runs")
    resumable_runs = _run_in_pool("resumable_runs")
    run_pause = _run_in_pool("run_pause")
    run_fail = _run_in_pool("run_fail")
    run_cancel = _run_in_pool("run_cancel")
    run_complete = _run_in_pool("run_complete")
    run_resume = _run_in_pool("run_resume")
    stats = _run_in_pool("stats")
    vacuum = _run_in_pool("vacuum")
    export = _run_in_pool("export")
    import_ = _run_in_pool("import_")
