"""The storage contract every backend implements.

A backend implements a few primitives over plain records; ``Memory`` composes
them into the public API (validation, ids, timestamps, TTL arithmetic live in
the facade, not here). All methods are synchronous: ``AsyncMemory`` runs them
on a worker pool. Errors raised by a driver must be translated into
``engram.errors`` before they leave the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from engram.errors import Conflict, Unsupported
from engram.models import Checkpoint, Entry, Message, Profile, Run, Session, Summary, Task
from engram.search.query import Node

if TYPE_CHECKING:
    from engram.config import Settings

# Capabilities a backend may declare. The conformance suite skips exactly the
# tests of capabilities a backend lacks, and the docs table is built from these.
FTS = "fts"  # full-text search with the query language
MULTIPROCESS = "multiprocess"  # several processes may share one store safely
PERSISTENT = "persistent"  # data outlives the process
VACUUM = "vacuum"  # vacuum() reclaims space
VECTOR = "vector"  # stores embeddings and searches them by cosine similarity
CONVERSATION = "conversation"  # messages, summaries, profiles, checkpoints (the *_message(s)... primitives)
MESSAGE_VECTOR = "message_vector"  # embeds chat messages and searches them by meaning (vector / hybrid message search)

MetadataFilter = dict[str, Any]

# How ``list_entries`` may order: by updated_at, newest or oldest first. Ties go
# by first insertion (newest first: the later inserted first), so one order is
# exactly the other reversed.
ENTRY_ORDERS = ("updated_desc", "updated_asc")


@dataclass(frozen=True, slots=True)
class EntryQuery:
    """What ``list`` asks for; ``namespace=None`` means every namespace."""

    namespace: str | None = None
    limit: int = 20
    offset: int = 0
    metadata: MetadataFilter = field(default_factory=dict)
    key_prefix: str | None = None
    order: str = "updated_desc"  # one of ENTRY_ORDERS


# How ``list_sessions`` may order: by start time, newest or oldest first (ties by id).
SESSION_SORTS = ("newest", "oldest")


@dataclass(frozen=True, slots=True)
class SessionQuery:
    status: str | None = None
    ended_before: datetime | None = None
    limit: int = 20
    offset: int = 0
    user_id: str | None = None
    agent_id: str | None = None
    sort: str = "newest"  # one of SESSION_SORTS


@dataclass(frozen=True, slots=True)
class TaskQuery:
    session_id: str | None = None
    status: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class VectorModel:
    """The embedding model whose vectors a store holds: one per store, never mixed."""

    name: str
    dimensions: int


@dataclass(frozen=True, slots=True)
class VectorItem:
    """A vector to attach to the entry ``(namespace, key)`` if its content is still ``content``."""

    namespace: str
    key: str
    content: str
    vector: Any  # numpy float32 array of unit length


@dataclass(frozen=True, slots=True)
class MessageVectorItem:
    """A vector to attach to the message ``message_id`` if its content is still ``content``."""

    message_id: str
    content: str
    vector: Any  # numpy float32 array of unit length


@dataclass(frozen=True, slots=True)
class Counts:
    entries: int
    namespaces: int
    sessions: int
    tasks: int
    expired_entries: int
    size_bytes: int | None = None
    # Conversation records (0 on a backend without CONVERSATION).
    messages: int = 0
    summaries: int = 0
    profiles: int = 0
    checkpoints: int = 0
    runs: int = 0


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What ``history`` asks for: messages of one session, oldest first.

    Bounds are exclusive; ``limit`` keeps the *newest* N messages in range.
    """

    session_id: str
    limit: int | None = None
    before_seq: int | None = None
    after_seq: int | None = None
    before: datetime | None = None  # created_at < before
    after: datetime | None = None  # created_at > after


def run_conflict(run_id: str, current: str, from_statuses: Sequence[str], status: str) -> "Conflict":
    """The one message for a run not in a state to move (the same on every backend)."""
    return Conflict(
        f"run {run_id} is {current}: it can become {status} only when {' or '.join(from_statuses)}"
        + (" (resumed already?)" if status == "running" and current == "running" else "")
    )


@dataclass(frozen=True, slots=True)
class RunQuery:
    """What ``list_runs`` asks for; None means any. Newest updated first."""

    session_id: str | None = None
    user_id: str | None = None
    statuses: tuple[str, ...] | None = None
    limit: int = 20
    offset: int = 0

    def select(self, runs: Iterable[Run]) -> list[Run]:
        """The page of ``runs`` this query asks for, for backends that filter in Python."""
        found = [
            r
            for r in runs
            if (self.session_id is None or r.session_id == self.session_id)
            and (self.user_id is None or r.user_id == self.user_id)
            and (self.statuses is None or r.status in self.statuses)
        ]
        found.sort(key=lambda r: (-r.updated_at.timestamp(), r.id))
        return found[self.offset : self.offset + self.limit]


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What ``prune`` removes from conversation records; None means no rule of that kind.

    ``before``: messages and checkpoints created before it, and sessions that
    ended (``ended`` or ``error``) before it, with everything they hold.
    ``keep_last_per_session``: all but the newest N messages of each session.
    ``session_id``: only records of this session.
    """

    before: datetime | None = None
    keep_last_per_session: int | None = None
    session_id: str | None = None
    dry_run: bool = False
    # With ``session_id``: that session goes whatever its status and end time
    # (``Memory.session_delete``), with everything it holds.
    any_status: bool = False


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """How many conversation records a prune removed (or would remove)."""

    messages: int = 0
    sessions: int = 0
    checkpoints: int = 0
    tasks: int = 0


class Store(ABC):
    """A backend. Subclasses set ``capabilities`` and implement the primitives."""

    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, url: str):
        self.url = url

    @classmethod
    def from_url(cls, url: str, *, settings: "Settings | None" = None) -> "Store":
        """Open the store a URL names; ``settings`` carries what the backend may need
        beyond the URL (connection pool, timeouts). Backends override this to parse
        their own URL; None means the defaults."""
        return cls(url)  # type: ignore[call-arg]

    # -- entries -----------------------------------------------------------
    @abstractmethod
    def put_entries(self, entries: Sequence[Entry], *, now: datetime) -> list[Entry]:
        """Upsert entries on (namespace, key) in one transaction.

        An existing live entry keeps its id and created_at; an expired one is
        replaced as if new. An entry whose ``metadata`` is None was stored
        without metadata: it keeps the live entry's metadata ({} when new or
        expired), while ``{}`` clears it. Returns the entries as stored, in
        input order (with the metadata they ended up with).
        """

    @abstractmethod
    def get_entry(self, namespace: str, key: str, *, now: datetime) -> Entry | None:
        """The live entry, or None when absent or expired."""

    @abstractmethod
    def list_entries(self, query: EntryQuery, *, now: datetime) -> list[Entry]:
        """Live entries matching ``query`` in ``query.order`` (one of ``ENTRY_ORDERS``)."""

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
    def namespace_counts(self, *, now: datetime) -> dict[str, int]:
        """Live entries per namespace, for namespaces holding at least one, sorted by name.

        One query (a GROUP BY on SQL backends), not a probe per namespace.
        """

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

    def count_text_matches(self, query: Node, *, namespace: str | None, cap: int) -> int | None:
        """How many entries (expired ones included) match ``query``, counting no further than ``cap``.

        None when the backend cannot count cheaply (the default). Hybrid search
        uses it to keep the OR of a question's words from scoring a huge set.
        """
        return None

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

    # -- conversation (capability CONVERSATION) -------------------------------
    # Not abstract: a backend without the capability still instantiates, and
    # these raise ``Unsupported``. A backend that implements them declares
    # CONVERSATION in ``capabilities``.
    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(
            f"the {type(self).__name__} backend ({self.url}) does not support {what} "
            f"(it lacks the {CONVERSATION!r} capability)"
        )

    def append_messages(self, messages: Sequence[Message]) -> list[Message]:
        """Store new messages in one transaction, in order, each with a ``seq`` above any before.

        Returns the messages as stored (with their ``seq``).

        Raises:
            NotFound: a message's session does not exist (then nothing is stored).
        """
        raise self._unsupported("chat messages")

    def put_messages(self, messages: Sequence[Message]) -> list[Message]:
        """Store messages saved elsewhere, by id, in one transaction (copy and import); idempotent.

        A message whose id is stored already is left as it is. The others are
        inserted in input order, each keeping its ``seq`` when that is above
        every ``seq`` the store has handed out, else taking the next one: so
        messages given in ``seq`` order keep their order after whatever the
        store held, and into an empty store they keep their ``seq`` (and the
        summaries pointing at them stay true). ``created_at`` and every other
        field are kept.

        Returns every message as stored, in input order.

        Raises:
            NotFound: a new message's session does not exist (then nothing is stored).
        """
        raise self._unsupported("chat messages")

    def get_message(self, message_id: str) -> Message | None:
        """One message by id, or None."""
        raise self._unsupported("chat messages")

    def list_messages(self, query: MessageQuery) -> list[Message]:
        """Messages of a session in ``seq`` order; with ``limit``, the newest N of the range."""
        raise self._unsupported("chat messages")

    def count_messages(self, session_id: str, *, after_seq: int = 0) -> int:
        """How many messages of a session have ``seq > after_seq``."""
        raise self._unsupported("chat messages")

    def delete_messages(self, session_id: str) -> int:
        """Delete every message of a session and its summary; returns how many messages went."""
        raise self._unsupported("chat messages")

    def search_messages(
        self, query: Node, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        """BM25 full-text search over message content, scoped inside the index; best first."""
        raise self._unsupported("message search")

    def iter_messages(self, *, batch_size: int = 1000) -> Iterator[Message]:
        """Every message in ``seq`` order (for export and copy)."""
        raise self._unsupported("chat messages")

    def put_summary(self, summary: Summary) -> None:
        """Insert or replace the summary of a session.

        Raises:
            NotFound: the session does not exist.
        """
        raise self._unsupported("session summaries")

    def get_summary(self, session_id: str) -> Summary | None:
        raise self._unsupported("session summaries")

    def put_profile(self, profile: Profile) -> None:
        """Insert or replace the profile of a user."""
        raise self._unsupported("user profiles")

    def get_profile(self, user_id: str) -> Profile | None:
        raise self._unsupported("user profiles")

    def delete_profile(self, user_id: str) -> bool:
        """Delete a user's profile; True when it existed."""
        raise self._unsupported("user profiles")

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Insert a new checkpoint.

        Raises:
            NotFound: its session does not exist.
        """
        raise self._unsupported("checkpoints")

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        raise self._unsupported("checkpoints")

    def list_checkpoints(self, session_id: str, *, status: str | None = None) -> list[Checkpoint]:
        """Checkpoints of a session, newest created first."""
        raise self._unsupported("checkpoints")

    def resume_checkpoint(self, checkpoint_id: str, *, now: datetime) -> Checkpoint:
        """Atomically move a paused checkpoint to ``resumed``; returns it as stored.

        Raises:
            NotFound: no such checkpoint.
            Conflict: it was already resumed (by this or any other caller).
        """
        raise self._unsupported("checkpoints")

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Delete a checkpoint; True when it existed."""
        raise self._unsupported("checkpoints")

    def put_run(self, run: Run) -> None:
        """Insert a new run.

        Raises:
            NotFound: its session does not exist.
            Conflict: a run with its id exists.
        """
        raise self._unsupported("runs")

    def get_run(self, run_id: str) -> Run | None:
        raise self._unsupported("runs")

    def list_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching ``query``, newest updated first."""
        raise self._unsupported("runs")

    def move_run(
        self, run_id: str, *, from_statuses: Sequence[str], status: str, checkpoint_id: str | None, now: datetime
    ) -> Run:
        """Atomically move a run whose status is one of ``from_statuses`` to ``status``
        (and to ``checkpoint_id`` when not None), across processes; returns it as stored.

        Raises:
            NotFound: no such run.
            Conflict: its status is not one of ``from_statuses`` (e.g. another caller resumed it first).
        """
        raise self._unsupported("runs")

    def iter_runs(self, *, batch_size: int = 1000) -> Iterator[Run]:
        """Every run (for export and copy)."""
        offset = 0
        while batch := self.list_runs(RunQuery(limit=batch_size, offset=offset)):
            yield from batch
            offset += len(batch)

    def iter_summaries(self) -> Iterator[Summary]:
        """Every session summary (for export and copy)."""
        raise self._unsupported("session summaries")

    def iter_profiles(self) -> Iterator[Profile]:
        """Every user profile (for export and copy)."""
        raise self._unsupported("user profiles")

    def iter_checkpoints(self) -> Iterator[Checkpoint]:
        """Every checkpoint (for export and copy)."""
        raise self._unsupported("checkpoints")

    def prune_conversation(self, plan: PrunePlan) -> PruneCounts:
        """Remove (or with ``plan.dry_run`` only count) what ``plan`` names."""
        raise self._unsupported("conversation retention")

    def prune_entries(self, *, now: datetime, namespace: str | None = None, dry_run: bool = False) -> int:
        """Remove (or count) expired entries, optionally of one namespace only.

        The default composes ``prune_expired`` and ``counts``; backends override
        it to support a namespace.
        """
        if namespace is None:
            return self.counts(now=now).expired_entries if dry_run else self.prune_expired(now=now)
        raise self._unsupported("pruning the expired entries of one namespace")

    # -- vectors (optional: backends that declare VECTOR override these) -----
    # Not abstract, so a backend without vector support keeps working: these
    # defaults report "nothing stored" for reads and refuse writes and searches.
    def vector_search_path(self) -> str | None:
        """Where vector search runs: ``"in-process"`` (engram's own index in each process),
        ``"pgvector"`` (in the database), or None (this backend has no vector search)."""
        return "in-process" if VECTOR in self.capabilities else None

    def _no_vectors(self, what: str) -> Unsupported:
        return Unsupported(
            f"the {self.url.split(':', 1)[0]}:// backend cannot {what}: it does not support vector search "
            "(use search mode fts, or a backend with the vector capability such as sqlite:// or memory://)"
        )

    def vector_model(self) -> VectorModel | None:
        """The model of the stored vectors, or None when none was recorded."""
        return None

    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        """Attach vectors to entries whose content is unchanged; returns how many were attached.

        Records ``model`` when the store has none, in the same transaction.

        Raises:
            ConfigError: the store holds vectors of another model (``engram reindex`` fixes it).
        """
        raise self._no_vectors("store embeddings")

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

    def search_vector(
        self,
        vector: Any,
        *,
        namespace: str | None,
        metadata: MetadataFilter,
        limit: int,
        now: datetime,
    ) -> list[tuple[Entry, float]]:
        """Live entries nearest to ``vector`` by cosine similarity, best first."""
        raise self._no_vectors("search by vector")

    def count_vectors(self, namespace: str | None) -> int:
        """How many entries of ``namespace`` (None: all) have a vector."""
        return 0

    def get_vectors(self, idents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """The vectors of those ``(namespace, key)`` entries that have one."""
        return {}

    def vectors_by_hash(self, digests: Sequence[bytes]) -> dict[bytes, Any]:
        """Stored vectors by the content hash they embed (a cache across processes)."""
        return {}

    def entries_without_vectors(self, namespace: str | None, *, batch_size: int = 256) -> Iterator[list[Entry]]:
        """Batches of entries lacking a vector (for reindex)."""
        raise self._no_vectors("store embeddings")

    def clear_vectors(self) -> int:
        """Drop every vector and the recorded model (before a reindex with another model)."""
        raise self._no_vectors("store embeddings")

    # -- message vectors (capability MESSAGE_VECTOR) ---------------------------
    # One model per store: message vectors are recorded under the same
    # ``vector_model`` as entry vectors, and ``clear_vectors`` drops both.
    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        """Attach vectors to messages whose content is unchanged; returns how many were attached.

        Raises:
            ConfigError: the store holds vectors of another model.
        """
        raise self._no_vectors("store message embeddings")

    def get_message_vectors(self, message_ids: Sequence[str]) -> dict[str, Any]:
        """The vectors of those messages that have one, by message id (for export and copy)."""
        return {}

    def search_message_vectors(
        self, vector: Any, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        """Messages nearest to ``vector`` by cosine similarity, best first, within the scope."""
        raise self._no_vectors("search messages by vector")

    def count_message_vectors(self) -> int:
        """How many messages have a vector."""
        return 0

    def messages_without_vectors(self, *, batch_size: int = 256) -> Iterator[list[Message]]:
        """Batches of messages with content but no vector (for reindex)."""
        raise self._no_vectors("store message embeddings")

    def count_message_text_matches(
        self, query: Node, *, session_id: str | None, user_id: str | None, cap: int
    ) -> int | None:
        """Like ``count_text_matches``, over messages in the scope; None when it cannot count cheaply."""
        return None

    # -- operations ----------------------------------------------------------
    @abstractmethod
    def counts(self, *, now: datetime) -> Counts: ...

    def vacuum(self) -> None:
        """Reclaim space; a no-op where the backend has nothing to reclaim."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files; idempotent."""
