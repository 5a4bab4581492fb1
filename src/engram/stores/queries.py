"""The values the facade and the stores pass each other: queries, counts, prune plans, vector items.

Plain frozen dataclasses, no I/O; every family contract (``engram.stores.contracts``) speaks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engram.embeddings.cache import content_hash
from engram.errors import Conflict
from engram.models import Entry, Run
from engram.search.context import embedded_text

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
    """A vector to attach to the entry ``(namespace, key)`` if its content is still ``content``
    and its context still ``context``.

    The vector embeds :attr:`embedded` (the context, then the content); stores key it by
    :attr:`digest`, the hash of that text, so a vector is only ever reused for the same text.
    """

    namespace: str
    key: str
    content: str
    vector: Any  # numpy float32 array of unit length
    context: str | None = None

    @classmethod
    def of(cls, entry: Entry, vector: Any) -> "VectorItem":
        """``vector`` to attach to ``entry``: it embeds the entry's content after its context."""
        return cls(entry.namespace, entry.key, entry.content, vector, entry.context)

    @property
    def embedded(self) -> str:
        """The text the vector embeds (the content alone without a context)."""
        return embedded_text(self.content, self.context)

    @property
    def digest(self) -> bytes:
        """The hash of :attr:`embedded` that the store keeps beside the vector."""
        return content_hash(self.embedded)


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
