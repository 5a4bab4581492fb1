"""REST routes for runs of agents inside sessions: start, pause, fail, cancel, complete, resume once.

Thin like ``engram.server.routes``: parse, call the key's project ``Memory``,
return the model; a missing run is a 404 with the same message as over MCP
(``run_of``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from engram.errors import NotFound
from engram.memory import Memory
from engram.memory.runs import RESUMABLE
from engram.models import ResumedRun, Run
from engram.server._paths import ExactPathRoute
from engram.server.deps import CallerDep
from engram.server.models import Name
from engram.server.routes import IdPath, errors

router = APIRouter(prefix="/api/v1", route_class=ExactPathRoute)
RunPath = Annotated[str, Path(min_length=1, max_length=256, description="The run's id.")]
RunStatusArg = Literal["running", "paused", "error", "cancelled", "completed"]


def run_of(memory: Memory, run_id: str) -> Run:
    """One run; NotFound when there is none."""
    run = memory.run_get(run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class RunStartRequest(_Body):
    run_id: Name | None = Field(None, description="The run's id; left out, a UUID4 is generated.")
    user_id: Name | None = Field(None, description="Whose run (default: the session's user).")
    agent_id: Name | None = Field(None, description="The agent that runs it.")


class RunStateRequest(_Body):
    state: Any = Field(None, description="The run's state (any JSON value), saved as its latest checkpoint.")


class RunFinishRequest(_Body):
    status: Literal["completed", "error", "cancelled"] = Field(description="How the run ends.")
    state: Any = Field(None, description="With error or cancelled: the state to save as its latest checkpoint.")


@router.post("/sessions/{session_id}/runs", name="runs.start", status_code=201, response_model=Run,
             responses=errors(409), tags=["runs"])
def start_run(session_id: IdPath, caller: CallerDep, body: RunStartRequest | None = None) -> Run:
    """Start a running run in a session; a session id never seen before starts that session."""
    body = body or RunStartRequest()
    run = caller.memory.run_start(session_id, run_id=body.run_id, user_id=body.user_id, agent_id=body.agent_id)
    caller.target = run.id
    return run


@router.get("/runs", name="runs.list", response_model=list[Run], responses=errors(), tags=["runs"])
def list_runs(
    caller: CallerDep,
    session_id: Annotated[Name | None, Query(description="Only runs of this session.")] = None,
    user_id: Annotated[Name | None, Query(description="Only runs of this user.")] = None,
    status: Annotated[RunStatusArg | None, Query(description="Only runs with this status.")] = None,
    resumable: Annotated[bool, Query(description="Only paused, failed and cancelled runs.")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[Run]:
    """Runs, most recently updated first; resumable=true for those that can be resumed."""
    if resumable and status is None:
        return caller.memory.resumable_runs(session_id, user_id, limit=limit, offset=offset)
    if resumable and status not in RESUMABLE:
        return []
    # A status named (resumable or not): filtered in the store, so limit and offset page the matches.
    return caller.memory.runs(session_id=session_id, user_id=user_id, status=status, limit=limit, offset=offset)


@router.get("/runs/{run_id}", name="runs.get", response_model=Run, responses=errors(404), tags=["runs"])
def get_run(run_id: RunPath, caller: CallerDep) -> Run:
    """One run: its status and latest checkpoint."""
    return run_of(caller.memory, run_id)


@router.post("/runs/{run_id}/pause", name="runs.pause", response_model=Run, responses=errors(404, 409, 413),
             tags=["runs"])
def pause_run(run_id: RunPath, body: RunStateRequest, caller: CallerDep) -> Run:
    """Save a running run's state as a checkpoint and mark it paused."""
    return caller.memory.run_pause(run_id, body.state)


@router.post("/runs/{run_id}/resume", name="runs.resume", response_model=ResumedRun, responses=errors(404, 409),
             tags=["runs"])
def resume_run(run_id: RunPath, caller: CallerDep) -> ResumedRun:
    """Resume a paused, failed or cancelled run, once: {run, state}. A second resume is 409."""
    return caller.memory.run_resume(run_id)


@router.post("/runs/{run_id}/finish", name="runs.finish", response_model=Run, responses=errors(404, 409, 413),
             tags=["runs"])
def finish_run(run_id: RunPath, body: RunFinishRequest, caller: CallerDep) -> Run:
    """End a run as completed (final), error or cancelled (both resumable; a state given is saved as a checkpoint)."""
    if body.status == "completed":
        return caller.memory.run_complete(run_id)
    if body.status == "error":
        return caller.memory.run_fail(run_id, body.state)
    return caller.memory.run_cancel(run_id, body.state)
