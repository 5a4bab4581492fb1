"""Pydantic models of everything that crosses the public API.

Field names here are the contract: the CLI's ``--json`` output, the export
format and (later) the REST API use exactly these names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

JSONValue = Any  # any value json.dumps accepts; validated where it is stored

SessionStatus = Literal["active", "ended", "error"]
TaskStatus = Literal["pending", "running", "completed", "failed"]
MatchType = Literal["fts", "vector", "hybrid"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Entry(_Model):
    """One memory: ``(namespace, key) -> content`` with JSON metadata.

    ``context`` is the text embedded ahead of the content (what surrounds the
    memory: the turns before it, a date, a title), as bounded when it was
    stored; None when it was stored without one (see :mod:`engram.search.context`).
    """

    id: str
    key: str
    namespace: str
    content: str
    context: str | None = None
    metadata: dict[str, JSONValue] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None


class _Scored(_Model):
    """How well a hit matched (higher is better) and how.

    ``score`` is BM25 for ``fts``, cosine similarity for ``vector`` and the
    fused score for ``hybrid`` (0.3 x 2 / (1 + text rank) + 0.7 x cosine). The component fields say what
    each retriever saw (1-based ranks; None where it did not find the record).
    """

    score: float
    match_type: MatchType = "fts"
    fts_score: float | None = None
    fts_rank: int | None = None
    vector_score: float | None = None
    vector_rank: int | None = None


class SearchHit(_Scored):
    """One search result: the entry, how well it matched and how (see the fields of :class:`_Scored`)."""

    entry: Entry


class SearchResult(_Model):
    """The hits of one search, best first; ``count`` is ``len(results)``."""

    count: int
    results: list[SearchHit]


class Session(_Model):
    """An agent session: active until ended (``ended``) or failed (``error``)."""

    id: str
    status: SessionStatus
    metadata: dict[str, JSONValue] = Field(default_factory=dict)
    started_at: datetime
    ended_at: datetime | None = None
    user_id: str | None = None  # whose conversation (a chat session takes its first message's)
    agent_id: str | None = None


class Task(_Model):
    """A unit of agent work, optionally inside a session."""

    id: str
    agent_type: str
    input: JSONValue = None
    output: JSONValue = None
    status: TaskStatus
    session_id: str | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


class Stats(_Model):
    """Counts of what a store holds.

    ``messages``, ``summaries``, ``profiles`` and ``checkpoints`` count the
    conversation records (0 on a backend without conversation memory).
    """

    url: str
    entries: int
    namespaces: int
    sessions: int
    tasks: int
    expired_entries: int
    size_bytes: int | None = None
    vectors: int = 0
    embedding_model: str | None = None
    vector_search: str | None = None  # "in-process", "pgvector", or None without vector search
    messages: int = 0
    summaries: int = 0
    profiles: int = 0
    checkpoints: int = 0
    runs: int = 0


class PruneReport(_Model):
    """What ``prune()`` removed (or, with ``dry_run``, would remove), per kind.

    ``messages``, ``checkpoints`` and ``tasks`` include those that went with a
    pruned session; ``blobs`` counts blobs past ``cleanup_after_days`` that no
    message attaches.
    """

    expired_entries: int = 0
    messages: int = 0
    sessions: int = 0
    checkpoints: int = 0
    tasks: int = 0
    blobs: int = 0
    dry_run: bool = False


# -- conversation memory ------------------------------------------------------------

MessageRole = Literal["system", "user", "assistant", "tool"]
CheckpointStatus = Literal["paused", "resumed"]
ProfileMode = Literal["update", "replace"]


class Attachment(_Model):
    """A reference to a stored blob or file (the bytes live elsewhere)."""

    uri: str
    name: str | None = None
    media_type: str | None = None
    size_bytes: int | None = None
    metadata: dict[str, JSONValue] = Field(default_factory=dict)


BlobSource = Literal["user", "tool", "system"]


class BlobRef(_Model):
    """A stored blob: its id (the SHA-256 of its bytes), ``blob:<id>`` URI, size and what it is.

    Message attachments point at it by ``uri``. The same bytes put twice are
    one blob: the second put returns the first one's ref.
    """

    id: str
    uri: str
    size: int
    mime_type: str
    name: str | None = None
    sha256: str
    source: BlobSource = "user"
    metadata: dict[str, JSONValue] = Field(default_factory=dict)
    created_at: datetime


class Blob(BlobRef):
    """A blob with its bytes, as an export line carries it (``content`` is base64 in JSON).

    Validating one checks the bytes against ``sha256`` and ``size``, so an
    export whose blob was altered is refused before anything is imported.
    """

    content: bytes

    @field_validator("content", mode="before")
    @classmethod
    def _from_base64(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("content must be base64 text") from None
        return value

    @field_serializer("content", when_used="json")
    def _to_base64(self, content: bytes) -> str:
        return base64.b64encode(content).decode("ascii")

    @model_validator(mode="after")
    def _bytes_match(self) -> "Blob":
        if len(self.content) != self.size:
            raise ValueError(f"content is {len(self.content)} bytes, the blob says size {self.size}")
        if hashlib.sha256(self.content).hexdigest() != self.sha256:
            raise ValueError("content does not match its sha256: the blob was altered or truncated")
        return self

    def ref(self) -> BlobRef:
        """The blob without its bytes."""
        return BlobRef(**self.model_dump(exclude={"content"}))


class BlobStats(_Model):
    """What a project's blob store holds: how many blobs, their bytes, which backend, where."""

    count: int
    total_size: int
    backend: str
    location: str
    blob_limit: int
    total_limit: int


class Message(_Model):
    """One chat message of a session.

    ``seq`` is assigned by the store and only grows, so it orders messages
    stably even when two share a timestamp. ``tool_calls`` uses the OpenAI
    shape (``[{"id", "type": "function", "function": {"name", "arguments"}}]``);
    a ``tool`` message names the call it answers in ``tool_call_id``.
    """

    id: str
    session_id: str
    role: MessageRole
    content: str
    user_id: str | None = None
    agent_id: str | None = None
    metadata: dict[str, JSONValue] = Field(default_factory=dict)
    tool_calls: list[dict[str, JSONValue]] = Field(default_factory=list)
    tool_call_id: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    created_at: datetime
    seq: int = 0


class MessageHit(_Scored):
    """One message found by ``search_messages``: higher score is better (the fields of :class:`_Scored`)."""

    message: Message


class MessageSearchResult(_Model):
    """The hits of one message search, best first; ``count`` is ``len(results)``."""

    count: int
    results: list[MessageHit]


class Summary(_Model):
    """The running summary of a session, covering its first ``message_count`` messages.

    ``last_seq`` is the ``seq`` of the newest message covered: the next update
    reads only messages after it.
    """

    session_id: str
    content: str
    message_count: int
    last_seq: int = 0
    updated_at: datetime


class Trait(_Model):
    """One thing known about a user, with the ids of the messages it came from."""

    value: JSONValue
    source_message_ids: list[str] = Field(default_factory=list)
    updated_at: datetime


class Profile(_Model):
    """What is known about a user: trait name -> :class:`Trait`.

    ``schema_name`` / ``schema_version`` name the profile schema the traits
    were extracted to fill (``user_profile_schema``), None when free-form.
    """

    user_id: str
    traits: dict[str, Trait] = Field(default_factory=dict)
    updated_at: datetime
    schema_name: str | None = None
    schema_version: str | None = None


class Checkpoint(_Model):
    """An agent run's state saved when it paused (e.g. waiting for a human)."""

    id: str
    session_id: str
    run_id: str | None = None
    state: JSONValue = None
    status: CheckpointStatus = "paused"
    created_at: datetime
    resumed_at: datetime | None = None


RunStatus = Literal["running", "paused", "error", "cancelled", "completed"]


class Run(_Model):
    """A run of an agent inside a session: its status and its latest checkpoint.

    ``paused``, ``error`` and ``cancelled`` runs can be resumed (once each
    time: the resume moves the run back to ``running``); ``completed`` is final.
    """

    id: str
    session_id: str
    user_id: str | None = None
    agent_id: str | None = None
    status: RunStatus = "running"
    checkpoint_id: str | None = None  # the latest checkpoint saved for it
    created_at: datetime
    updated_at: datetime


class ResumedRun(_Model):
    """What ``run_resume`` returns: the run, running again, and the state of its latest checkpoint."""

    run: Run
    state: JSONValue = None


__all__ = [
    "Attachment",
    "Blob",
    "BlobRef",
    "BlobSource",
    "BlobStats",
    "Checkpoint",
    "CheckpointStatus",
    "Message",
    "MessageHit",
    "MessageRole",
    "MessageSearchResult",
    "Profile",
    "ProfileMode",
    "PruneReport",
    "ResumedRun",
    "Run",
    "RunStatus",
    "Summary",
    "Trait",
    "Entry",
    "JSONValue",
    "MatchType",
    "SearchHit",
    "SearchResult",
    "Session",
    "SessionStatus",
    "Stats",
    "Task",
    "TaskStatus",
]
