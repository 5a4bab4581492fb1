"""The sessions part of the facade: sessions (start, end, metadata, delete) and the tasks in them.

The chat and runs parts take this part as a collaborator: a message or run
for a session id never seen before opens that session here
(:meth:`Sessions.open_for`), and :meth:`Sessions.require` is the one
"unknown session" check every caller and front end shares.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from engram import validation as check
from engram._time import utcnow
from engram.errors import Conflict, InvalidInput, NotFound
from engram.models import Message, Run, Session, Task
from engram.stores.base import SESSION_SORTS, PrunePlan, SessionQuery, TaskQuery

if TYPE_CHECKING:
    from engram.stores.base import Store

SESSION_STATUSES = ("active", "ended", "error")
END_STATUSES = ("ended", "error")
TASK_STATUSES = ("pending", "running", "completed", "failed")
FINISHED_TASK_STATUSES = ("completed", "failed")
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=timezone.utc)  # after every record's created_at

# A session id a caller makes up (by writing to it) travels in URLs, CLI arguments and
# tool calls: keep it to characters none of them need to escape.
MAX_SESSION_ID_CHARS = 128
_SESSION_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:@-]{{0,{MAX_SESSION_ID_CHARS - 1}}}")


def new_session_id(value: Any) -> str:
    """Check a caller's id for a session that does not exist yet.

    Raises:
        InvalidInput: not 1 to 128 letters, digits, ``_ . : @ -``, starting with a letter or digit.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"session id must be a string, not {type(value).__name__}")
    if not _SESSION_ID.fullmatch(value):
        raise InvalidInput(
            f"session id {value!r} cannot name a new session: use 1 to {MAX_SESSION_ID_CHARS} letters, digits "
            "and _ . : @ -, starting with a letter or digit (e.g. a UUID or 'user-42:chat-1')"
        )
    return value


class Sessions:
    """Sessions and tasks in ``backend``; metadata and task payloads up to ``max_bytes``."""

    def __init__(self, backend: "Store", *, max_bytes: int) -> None:
        self.backend = backend
        self.max_bytes = max_bytes

    def session_start(
        self, metadata: dict[str, Any] | None = None, *, user_id: str | None = None, agent_id: str | None = None
    ) -> Session:
        """Start a new active session, optionally of a user and an agent."""
        session = Session.model_construct(
            id=str(uuid.uuid4()),
            status="active",
            metadata=check.metadata(metadata, self.max_bytes),
            started_at=utcnow(),
            ended_at=None,
            user_id=None if user_id is None else check.name("user_id", user_id),
            agent_id=None if agent_id is None else check.name("agent_id", agent_id),
        )
        self.backend.put_session(session)
        return session

    def require(self, session_id: Any) -> Session:
        """The session, for a caller that needs it to exist.

        Raises:
            NotFound: no such session (the one message every front end shows).
        """
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
        session = self.require(id)
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
        return dict(self.require(id).metadata)

    def session_update(self, id: str, metadata: dict[str, Any], *, replace: bool = False) -> Session:
        """Merge ``metadata`` into a session's (a key set to None is removed), or ``replace`` it.

        Raises:
            NotFound: no such session.
            InvalidInput: metadata that is not a JSON object of valid keys.
        """
        session = self.require(id)
        if not isinstance(metadata, Mapping):
            raise InvalidInput(f"metadata must be a dict, not {type(metadata).__name__}")
        merged = dict(metadata) if replace else {**session.metadata, **metadata}
        merged = {k: v for k, v in merged.items() if v is not None}
        updated = session.model_copy(update={"metadata": check.metadata(merged, self.max_bytes)})
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
        check.json_value("input", input, self.max_bytes)
        if session_id is not None:
            self.require(session_id)
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
            check.json_value("output", output, self.max_bytes)
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

    def open_for(self, messages: Iterable[Message | Run]) -> bool:
        """Start an active session for each message's (or run's) session id that names none; True when any was.

        A session started so takes the user and agent of its first message.

        Raises:
            InvalidInput: an id that is not a valid new session id (then nothing is started).
        """
        owners: dict[str, Message | Run] = {}
        for m in messages:
            owners.setdefault(m.session_id, m)
        missing = [(new_session_id(i), m) for i, m in owners.items() if self.backend.get_session(i) is None]
        now = utcnow()
        for sid, m in missing:
            self.backend.put_session(
                Session.model_construct(
                    id=sid, status="active", metadata={}, started_at=now, ended_at=None,
                    user_id=m.user_id, agent_id=m.agent_id,
                )
            )
        return bool(missing)
