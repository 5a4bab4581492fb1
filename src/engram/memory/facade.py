"""``Memory`` and ``AsyncMemory``: the one facade every front end calls.

``Memory`` is composed of parts, each a small class that takes what it needs
in its constructor (the backend, the limits, and the other parts it calls)::

    CacheLayer(settings, backend)                     storage.cache: memory.cache, embeddings, search results
    Semantic(backend, settings, caches)               embedding, vector/hybrid search, reindex
    Entries(backend, semantic)                        memories by (namespace, key)
    Sessions(backend)                                 sessions and tasks; the "unknown session" check
    Chat(backend, semantic, sessions)                 messages, history, message search, summaries
    Profiles(backend)                                 what is known about a user
    Runs(backend, sessions)                           checkpoints and runs
    Retention(backend, blobs)                         prune (blobs too), stats, vacuum
    Transfer(memory)                                  JSONL export and import

Each public method of ``Memory`` delegates to one part (same signature and
docstring). ``AsyncMemory`` runs the very same methods on a bounded worker
pool, so both APIs behave identically.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from engram.blobs.async_blobs import AsyncBlobs
from engram.blobs.opening import open_blob_store
from engram.blobs.store import BlobStore
from engram.cache.async_cache import AsyncCache
from engram.cache.base import Cache, CacheBackend
from engram.cache.layer import CacheLayer
from engram.config import Settings, load_settings
from engram.embeddings import Embedder
from engram.memory.chat import Chat
from engram.memory.entries import Entries
from engram.memory.profiles import Profiles
from engram.memory.retention import Retention
from engram.memory.runs import Runs
from engram.memory.semantic import Semantic
from engram.memory.sessions import Sessions
from engram.memory.transfer import Transfer
from engram.stores.base import Store
from engram.stores.registry import store_class

P = ParamSpec("P")
R = TypeVar("R")
Part = TypeVar("Part")


def open_store(url: str, settings: Settings | None = None) -> Store:
    """Open the backend for ``url`` (imports its module on first use).

    ``settings`` gives the backend what it needs beyond the URL (pool sizes,
    timeouts); None means the defaults.
    """
    return store_class(url).from_url(url, settings=settings)


@dataclass(frozen=True)
class Parts:
    """The parts a ``Memory`` is composed of, for library code that works below its public
    methods (conversation memory builds messages before it stores them)."""

    semantic: Semantic
    entries: Entries
    sessions: Sessions
    chat: Chat
    profiles: Profiles
    runs: Runs
    retention: Retention
    transfer: Transfer


_DELEGATED: dict[str, tuple[str, Callable[..., Any]]] = {}  # method name -> (part, the Memory method)


def _via(part: str, method: Callable[Concatenate[Part, P], R]) -> Callable[Concatenate["Memory", P], R]:
    """A ``Memory`` method that calls ``method`` on the part named ``part``, with its signature and docstring."""
    name = method.__name__

    def call(self: "Memory", *args: P.args, **kwargs: P.kwargs) -> R:
        return method(getattr(self.parts, part), *args, **kwargs)

    functools.update_wrapper(call, method)
    call.__qualname__ = f"Memory.{name}"
    call.__module__ = __name__
    _DELEGATED[name] = (part, call)
    return call


class Memory:
    """Persistent memory for agents, over the backend named by a URL.

    ``Memory("sqlite:///agent.db")``, ``Memory("memory://")``, or ``Memory()``
    for ``ENGRAM_DATABASE_URL`` / the config file / the default SQLite file.
    Use it as a context manager or call :meth:`close`. ``backend`` takes an
    already opened :class:`~engram.stores.base.Store` instead of a URL, and
    ``cache_backend`` an open cache backend to share (``storage.cache`` otherwise).
    ``memory.blobs`` is the blob store (files, images, large objects) of
    ``project``, configured by ``storage.blob_store``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        backend: Store | None = None,
        check_embedder: bool = True,
        project: str = "default",
        cache_backend: CacheBackend | None = None,
    ):
        self.settings = settings or load_settings(database_url=url)
        if url is not None and settings is not None:
            self.settings = self.settings.model_copy(update={"database_url": url})
        self.backend = backend or open_store(self.settings.database_url, self.settings)
        max_bytes = self.settings.max_content_bytes
        caches: CacheLayer | None = None
        try:
            caches = CacheLayer(self.settings, self.backend, backend=cache_backend)
            # Refuses a store whose vectors come from another model than the
            # embedder configured (``check_embedder=False`` is for reindex).
            semantic = Semantic(self.backend, self.settings, check_embedder=check_embedder, caches=caches)
            # The blob store of this project (``storage.blob_store``); files are made on first put.
            self.blobs: BlobStore = open_blob_store(self.settings, self.backend, project=project)
        except BaseException:
            if caches is not None:
                caches.close()
            self.backend.close()
            raise
        self.caches = caches
        self.cache: Cache = caches.user
        """The project's cache: ``get``, ``set(key, value, ttl=None)``, ``delete``, ``exists``,
        ``get_many``, ``set_many``, ``clear(prefix=None)``, ``stats()`` (see :class:`engram.cache.Cache`)."""
        sessions = Sessions(self.backend, max_bytes=max_bytes)
        self.parts = Parts(
            semantic=semantic,
            entries=Entries(self.backend, semantic, max_bytes=max_bytes),
            sessions=sessions,
            chat=Chat(self.backend, semantic, sessions, max_bytes=max_bytes),
            profiles=Profiles(self.backend, max_bytes=max_bytes),
            runs=Runs(self.backend, sessions, max_bytes=max_bytes),
            retention=Retention(self.backend, self.blobs),
            transfer=Transfer(self),
        )
        # A call costs what calling the part costs: each instance holds the parts' bound methods,
        # which shadow the delegating ones (unless one was replaced on the class, as tests do).
        cls = type(self)
        for name, (part, delegate) in _DELEGATED.items():
            if getattr(cls, name, None) is delegate:
                self.__dict__[name] = getattr(getattr(self.parts, part), name)

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def embedder(self) -> Embedder | None:
        """The embedder configured, or None (search is then full-text only)."""
        return self.parts.semantic.embedder

    @embedder.setter
    def embedder(self, embedder: Embedder | None) -> None:
        self.parts.semantic.embedder = embedder

    @property
    def embedder_note(self) -> str | None:
        """Why search is full-text only, or None when search by meaning is available."""
        return self.parts.semantic.embedder_note

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections and files. Safe to call twice."""
        try:
            self.blobs.close()
            self.backend.close()
        finally:
            self.caches.close()

    def __repr__(self) -> str:
        return f"Memory({self.url!r})"

    # -- entries ---------------------------------------------------------------
    store = _via("entries", Entries.store)
    store_many = _via("entries", Entries.store_many)
    get = _via("entries", Entries.get)
    list = _via("entries", Entries.list)
    delete = _via("entries", Entries.delete)
    delete_namespace = _via("entries", Entries.delete_namespace)
    namespaces = _via("entries", Entries.namespaces)
    namespace_counts = _via("entries", Entries.namespace_counts)

    # -- search by meaning -----------------------------------------------------
    search = _via("semantic", Semantic.search)
    embed = _via("semantic", Semantic.embed)
    reindex = _via("semantic", Semantic.reindex)

    # -- sessions and tasks ----------------------------------------------------
    session_start = _via("sessions", Sessions.session_start)
    session_end = _via("sessions", Sessions.session_end)
    session_get = _via("sessions", Sessions.session_get)
    sessions = _via("sessions", Sessions.sessions)
    session_metadata = _via("sessions", Sessions.session_metadata)
    session_update = _via("sessions", Sessions.session_update)
    session_delete = _via("sessions", Sessions.session_delete)
    task_create = _via("sessions", Sessions.task_create)
    task_update = _via("sessions", Sessions.task_update)
    task_get = _via("sessions", Sessions.task_get)
    tasks = _via("sessions", Sessions.tasks)

    # -- conversation ----------------------------------------------------------
    add_message = _via("chat", Chat.add_message)
    add_messages = _via("chat", Chat.add_messages)
    message_get = _via("chat", Chat.message_get)
    history = _via("chat", Chat.history)
    delete_history = _via("chat", Chat.delete_history)
    search_messages = _via("chat", Chat.search_messages)
    summary = _via("chat", Chat.summary)
    summary_save = _via("chat", Chat.summary_save)
    profile = _via("profiles", Profiles.profile)
    profile_save = _via("profiles", Profiles.profile_save)
    profile_delete = _via("profiles", Profiles.profile_delete)

    # -- checkpoints and runs --------------------------------------------------
    checkpoint_save = _via("runs", Runs.checkpoint_save)
    checkpoint_get = _via("runs", Runs.checkpoint_get)
    checkpoints = _via("runs", Runs.checkpoints)
    checkpoint_resume = _via("runs", Runs.checkpoint_resume)
    checkpoint_delete = _via("runs", Runs.checkpoint_delete)
    run_start = _via("runs", Runs.run_start)
    run_get = _via("runs", Runs.run_get)
    runs = _via("runs", Runs.runs)
    resumable_runs = _via("runs", Runs.resumable_runs)
    run_pause = _via("runs", Runs.run_pause)
    run_fail = _via("runs", Runs.run_fail)
    run_cancel = _via("runs", Runs.run_cancel)
    run_complete = _via("runs", Runs.run_complete)
    run_resume = _via("runs", Runs.run_resume)

    # -- operations ------------------------------------------------------------
    prune = _via("retention", Retention.prune)
    stats = _via("retention", Retention.stats)
    vacuum = _via("retention", Retention.vacuum)
    export = _via("transfer", Transfer.export)
    import_ = _via("transfer", Transfer.import_)


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

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        backend: Store | None = None,
        project: str = "default",
    ):
        self._memory = Memory(url, settings=settings, backend=backend, project=project)
        self._pool = ThreadPoolExecutor(
            max_workers=self._memory.settings.async_workers, thread_name_prefix="engram"
        )
        self.blobs = AsyncBlobs(self._memory.blobs, self._pool)
        self.cache = AsyncCache(self._memory.cache, self._pool)
        """The project's cache, with the same methods as ``Memory.cache``, awaited."""

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
