"""What every front end (REST, MCP, dashboard, CLI) asks the facade the same way.

A front end gets text: a history bound that is a message id or a date-time,
an id that must name a record. These functions turn that text into the
facade's arguments and "nothing there" into ``NotFound``, once, so every
front end answers with the same message.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from pydantic import TypeAdapter, ValidationError

from engram.errors import InvalidInput, NotFound
from engram.models import Checkpoint, Message, Profile, Session, Summary

if TYPE_CHECKING:
    from engram.memory.facade import Memory

# A date-time starts with a four-digit year; a message id (a UUID) starts with eight hex digits.
_LOOKS_LIKE_TIME = re.compile(r"\s*\d{4}-\d{2}-\d{2}(?:[T ].*)?\s*", re.DOTALL)
_datetime = TypeAdapter(datetime)
T = TypeVar("T")


def message_bound(field: str, value: str | None, *, naive_is_local: bool = False) -> datetime | str | None:
    """A history bound given as text: a date-time when it reads as one (ISO 8601), else a message id.

    Args:
        naive_is_local: a date-time without a zone is the local time (a person at
            a terminal), not UTC (what the facade assumes of an API caller).
    Raises:
        InvalidInput: it reads as a date-time but is not a valid one.
    """
    if value is None or not _LOOKS_LIKE_TIME.fullmatch(value):
        return value
    try:
        moment = _datetime.validate_python(value.strip())
    except ValidationError:
        raise InvalidInput(f"{field} is neither a message id nor a valid ISO 8601 date-time: {value!r}") from None
    return moment.astimezone() if naive_is_local and moment.tzinfo is None else moment


def history_of(
    memory: "Memory",
    session_id: str,
    *,
    limit: int | None = None,
    before: str | None = None,
    after: str | None = None,
    naive_is_local: bool = False,
) -> list[Message]:
    """A session's messages, oldest first, between bounds given as text (see :func:`message_bound`).

    Raises:
        NotFound: the session does not exist.
    """
    return memory.history(
        session_id,
        limit=limit,
        before=message_bound("before", before, naive_is_local=naive_is_local),
        after=message_bound("after", after, naive_is_local=naive_is_local),
    )


def session_of(memory: "Memory", session_id: str) -> Session:
    """One session.

    Raises:
        NotFound: the session does not exist.
    """
    return memory.parts.sessions.require(session_id)


def delete_session(memory: "Memory", session_id: str) -> None:
    """Delete a session with everything it holds.

    Raises:
        NotFound: the session does not exist.
    """
    if not memory.session_delete(session_id):
        raise NotFound(f"session {session_id} does not exist")


def summary_of(memory: "Memory", session_id: str) -> Summary:
    """A session's running summary.

    Raises:
        NotFound: the session does not exist, or has no summary yet.
    """
    # memory.summary raises NotFound itself for an unknown session.
    return _found(memory.summary(session_id), f"session {session_id} has no summary yet")


def profile_of(memory: "Memory", user_id: str) -> Profile:
    """A user's profile.

    Raises:
        NotFound: there is none.
    """
    return _found(memory.profile(user_id), f"no profile for user {user_id!r}")


def checkpoint_of(memory: "Memory", checkpoint_id: str) -> Checkpoint:
    """One checkpoint.

    Raises:
        NotFound: there is none.
    """
    return _found(memory.checkpoint_get(checkpoint_id), f"checkpoint {checkpoint_id} does not exist")


def checkpoints_of(memory: "Memory", session_id: str, status: str | None = None) -> list[Checkpoint]:
    """A session's checkpoints, newest first.

    Raises:
        NotFound: the session does not exist.
    """
    return memory.checkpoints(session_id, status=status)


def delete_checkpoint(memory: "Memory", checkpoint_id: str) -> None:
    """Delete a checkpoint.

    Raises:
        NotFound: there is none.
    """
    if not memory.checkpoint_delete(checkpoint_id):
        raise NotFound(f"checkpoint {checkpoint_id} does not exist")


def _found(found: T | None, missing: str) -> T:
    """``found``, or NotFound saying ``missing`` when it is None."""
    if found is None:
        raise NotFound(missing)
    return found
