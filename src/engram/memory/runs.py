"""The runs part of the facade: checkpoints (saved agent state, e.g. waiting for a human) and
runs of agents inside sessions: start, pause, fail, cancel, complete, and resume once.

A run's status moves only along these edges, each an atomic compare-and-set in
the store (so a second resume, in this process or another, is ``Conflict``)::

    running -> paused | error | cancelled | completed
    paused | error | cancelled -> running      (resume)
    paused | error -> cancelled

Pausing saves the run's state as a checkpoint and points the run at it;
resuming returns the state of the run's latest checkpoint.
"""

from __future__ import annotations

import builtins
import uuid
from typing import TYPE_CHECKING, Any, get_args

from engram import validation as check
from engram._time import utcnow
from engram.errors import Conflict, NotFound
from engram.memory.chat import _optional_name
from engram.models import Checkpoint, ResumedRun, Run, RunStatus
from engram.stores.base import RunQuery

if TYPE_CHECKING:
    from engram.memory.sessions import Sessions
    from engram.stores.base import Store

RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
RESUMABLE = ("paused", "error", "cancelled")
CHECKPOINT_STATUSES = ("paused", "resumed")


class Runs:
    """Checkpoints and runs in ``backend``; ``sessions`` opens the sessions a new run names
    and says which do not exist; states up to ``max_bytes``."""

    def __init__(self, backend: "Store", sessions: "Sessions", *, max_bytes: int) -> None:
        self.backend = backend
        self.sessions = sessions
        self.max_bytes = max_bytes

    def checkpoint_save(
        self, session_id: str, state: Any, *, run_id: str | None = None, status: str = "paused"
    ) -> Checkpoint:
        """Save an agent run's state (JSON only, never pickle), e.g. while it waits for a human.

        Raises:
            NotFound: the session does not exist.
            InvalidInput: the state is not plain JSON.
        """
        check.choice("status", status, CHECKPOINT_STATUSES)
        check.json_value("state", state, self.max_bytes)
        now = utcnow()
        checkpoint = Checkpoint.model_construct(
            id=str(uuid.uuid4()),
            session_id=check.identifier("session id", session_id),
            run_id=_optional_name("run_id", run_id),
            state=state,
            status=status,
            created_at=now,
            resumed_at=now if status == "resumed" else None,
        )
        self.backend.put_checkpoint(checkpoint)
        return checkpoint

    def checkpoint_get(self, id: str) -> Checkpoint | None:
        """One checkpoint, or None."""
        return self.backend.get_checkpoint(check.identifier("checkpoint id", id))

    def checkpoints(self, session_id: str, status: str | None = None) -> builtins.list[Checkpoint]:
        """Checkpoints of a session, newest first, optionally only ``paused`` or ``resumed``.

        Raises:
            NotFound: the session does not exist.
        """
        if status is not None:
            check.choice("status", status, CHECKPOINT_STATUSES)
        found = self.backend.list_checkpoints(check.identifier("session id", session_id), status=status)
        if not found:
            self.sessions.require(session_id)
        return found

    def checkpoint_resume(self, id: str) -> Any:
        """Mark a paused checkpoint resumed and return its state.

        Raises:
            NotFound: no such checkpoint.
            Conflict: it was already resumed; a run resumes once.
        """
        return self.backend.resume_checkpoint(check.identifier("checkpoint id", id), now=utcnow()).state

    def checkpoint_delete(self, id: str) -> bool:
        """Delete a checkpoint; True when it existed."""
        return self.backend.delete_checkpoint(check.identifier("checkpoint id", id))

    def run_start(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> Run:
        """Start a ``running`` run in a session; a session id never seen before starts that session.

        ``user_id`` defaults to the session's user.

        Raises:
            InvalidInput: a bad id.
            Conflict: ``run_id`` names a run that exists.
        """
        sid = check.identifier("session id", session_id)
        rid = str(uuid.uuid4()) if run_id is None else check.identifier("run id", run_id)
        uid = None if user_id is None else check.name("user_id", user_id)
        aid = None if agent_id is None else check.name("agent_id", agent_id)
        session = self.backend.get_session(sid)
        if session is not None and uid is None:
            uid = session.user_id
        now = utcnow()
        run = Run.model_construct(
            id=rid, session_id=sid, user_id=uid, agent_id=aid, status="running", checkpoint_id=None,
            created_at=now, updated_at=now,
        )  # fmt: skip
        if session is None:
            self.sessions.open_for([run])  # takes the run's user and agent, as a first message's
        self.backend.put_run(run)
        return run

    def run_get(self, id: str) -> Run | None:
        """One run, or None."""
        return self.backend.get_run(check.identifier("run id", id))

    def runs(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> builtins.list[Run]:
        """Runs, most recently updated first, optionally of one session, user or status."""
        statuses = None if status is None else (check.choice("status", status, RUN_STATUSES),)
        return self._runs(session_id, user_id, statuses, limit, offset)

    def resumable_runs(
        self, session_id: str | None = None, user_id: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[Run]:
        """Runs that can be resumed (``paused``, ``error``, ``cancelled``), most recently updated first."""
        return self._runs(session_id, user_id, RESUMABLE, limit, offset)

    def _runs(
        self, session_id: Any, user_id: Any, statuses: tuple[str, ...] | None, limit: int, offset: int
    ) -> builtins.list[Run]:
        query = RunQuery(
            session_id=None if session_id is None else check.identifier("session id", session_id),
            user_id=None if user_id is None else check.name("user_id", user_id),
            statuses=statuses,
            limit=check.limit(limit),
            offset=check.offset(offset),
        )
        return self.backend.list_runs(query)

    def _move(self, id: str, from_statuses: tuple[str, ...], status: str, state: Any = None, *, save: bool) -> Run:
        rid = check.identifier("run id", id)
        checkpoint_id = None
        if save:
            run = self.backend.get_run(rid)
            if run is not None and run.status in from_statuses:  # else the move below says why not
                check.json_value("state", state, self.max_bytes)
                checkpoint_id = self.checkpoint_save(run.session_id, state, run_id=rid).id
        try:
            return self.backend.move_run(
                rid, from_statuses=from_statuses, status=status, checkpoint_id=checkpoint_id, now=utcnow()
            )
        except (Conflict, NotFound):
            if checkpoint_id is not None:  # lost a race: leave no checkpoint behind
                self.backend.delete_checkpoint(checkpoint_id)
            raise

    def run_pause(self, id: str, state: Any) -> Run:
        """Save a running run's state (plain JSON) as a checkpoint and mark it ``paused``.

        Raises:
            NotFound: no such run.
            Conflict: the run is not running.
        """
        return self._move(id, ("running",), "paused", state, save=True)

    def run_fail(self, id: str, state: Any = None) -> Run:
        """Mark a running run ``error`` (resumable); with ``state``, save it as its checkpoint."""
        return self._move(id, ("running",), "error", state, save=state is not None)

    def run_cancel(self, id: str, state: Any = None) -> Run:
        """Cancel a running, paused or failed run (resumable); with ``state``, save it as its checkpoint."""
        return self._move(id, ("running", "paused", "error"), "cancelled", state, save=state is not None)

    def run_complete(self, id: str) -> Run:
        """Mark a running run ``completed`` (final)."""
        return self._move(id, ("running",), "completed", save=False)

    def run_resume(self, id: str) -> ResumedRun:
        """Move a paused, failed or cancelled run back to ``running``, once, and return its latest state.

        Of callers racing to resume the same run, in any process, exactly one
        succeeds; the others get ``Conflict``.

        Raises:
            NotFound: no such run.
            Conflict: the run is not resumable (already resumed, running or completed).
        """
        run = self._move(id, RESUMABLE, "running", save=False)
        state = None
        if run.checkpoint_id is not None:
            checkpoint = self.backend.get_checkpoint(run.checkpoint_id)
            if checkpoint is not None:
                state = checkpoint.state
                if checkpoint.status == "paused":
                    try:
                        self.backend.resume_checkpoint(checkpoint.id, now=utcnow())
                    except Conflict:
                        pass  # resumed through checkpoint_resume meanwhile: the run's resume stands
        return ResumedRun.model_construct(run=run, state=state)

