"""Pydantic models of everything that crosses the public API.

Field names here are the contract: the CLI's ``--json`` output, the export
format and (later) the REST API use exactly these names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSONValue = Any  # any value json.dumps accepts; validated where it is stored

SessionStatus = Literal["active", "ended", "error"]
TaskStatus = Literal["pending", "running", "completed", "failed"]
MatchType = Literal["fts", "vector", "hybrid"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Entry(_Model):
    """One memory: ``(namespace, key) -> content`` with JSON metadata."""

    id: str
    key: str
    namespace: str
    content: str
    metadata: dict[str, JSONValue] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None


class SearchHit(_Model):
    """One search result: the entry, how well it matched (higher is better) and how."""

    entry: Entry
    score: float
    match_type: MatchType = "fts"


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
    """Counts of what a store holds."""

    url: str
    entries: int
    namespaces: int
    sessions: int
    tasks: int
    expired_entries: int
    size_bytes: int | None = None


class PruneReport(_Model):
    """What ``prune()`` removed, per kind."""

    expired_entries: int = 0


__all__ = [
    "PruneReport",
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
