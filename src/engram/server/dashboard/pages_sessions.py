"""Sessions and what hangs off them: tasks, the chat transcript, summary, profiles, checkpoints."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from engram.memory.lookups import checkpoint_of, checkpoints_of, history_of, profile_of
from engram.server.dashboard.web import PageRoute, Viewer, render, viewer
from engram.server.models import Name

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
PAGE = 50
# The newest messages a transcript page shows (older ones: ``before`` the first shown).
TRANSCRIPT = 500


def pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@router.get("/sessions", name="dashboard.sessions")
def sessions(
    request: Request,
    current: ViewerDep,
    status: Annotated[Literal["", "active", "ended", "error"], Query()] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Sessions, newest started first, by status."""
    rows = current.memory.sessions(status=status or None, limit=PAGE + 1, offset=(page - 1) * PAGE)
    return render(request, "sessions.html", viewer=current, rows=rows[:PAGE], more=len(rows) > PAGE, page=page,
                  status=status, statuses=("", "active", "ended", "error"))


@router.get("/tasks", name="dashboard.tasks")
def tasks(
    request: Request,
    current: ViewerDep,
    status: Annotated[Literal["", "pending", "running", "completed", "failed"], Query()] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Tasks of every session, newest created first, by status."""
    rows = current.memory.tasks(status=status or None, limit=PAGE + 1, offset=(page - 1) * PAGE)
    return render(request, "tasks.html", viewer=current, rows=rows[:PAGE], more=len(rows) > PAGE, page=page,
                  status=status, statuses=("", "pending", "running", "completed", "failed"), pretty=pretty)


@router.get("/session", name="dashboard.session")
def session(
    request: Request,
    current: ViewerDep,
    id: Annotated[Name, Query()],
    before: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> Response:
    """One session: its tasks, transcript (tool calls folded), summary, users' profiles and checkpoints."""
    memory = current.memory
    found = memory.session_get(id)
    messages = history_of(memory, id, limit=TRANSCRIPT, before=before)  # NotFound for an unknown session
    users = sorted({m.user_id for m in messages if m.user_id})
    return render(
        request, "session.html", viewer=current, session=found, messages=messages, users=users,
        tasks=memory.tasks(session_id=id, limit=200), summary=memory.summary(id),
        checkpoints=checkpoints_of(memory, id), pretty=pretty,
        older=messages[0].id if len(messages) == TRANSCRIPT else None,
    )


@router.get("/profile", name="dashboard.profile")
def profile(request: Request, current: ViewerDep, user: Annotated[Name, Query()]) -> Response:
    """What is known about a user: traits and the messages each came from."""
    return render(request, "profile.html", viewer=current, profile=profile_of(current.memory, user), pretty=pretty)


@router.get("/checkpoint", name="dashboard.checkpoint")
def checkpoint(request: Request, current: ViewerDep, id: Annotated[Name, Query()]) -> Response:
    """One checkpoint with the state a resume would hand back."""
    found = checkpoint_of(current.memory, id)
    return render(request, "checkpoint.html", viewer=current, checkpoint=found, state=pretty(found.state))
