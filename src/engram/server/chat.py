"""REST routes for conversation memory: messages, summaries, profiles, checkpoints.

Thin like ``engram.server.routes``: parse, call the key's project ``Memory``,
return the model. Text bounds and the lookups that turn "nothing there" into a
404 are the facade's (``engram.memory.lookups``), shared with the MCP tools,
the dashboard and the CLI, so every front end answers alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from engram.errors import NotFound
from engram.memory import lookups
from engram.models import (
    Attachment,
    Checkpoint,
    Message,
    MessageSearchResult,
    Profile,
    Summary,
)
from engram.server._paths import ExactPathRoute
from engram.server.deps import CallerDep
from engram.server.models import DeletedCount, Limit, Name, QueryText
from engram.server.routes import IdPath, SearchMode, errors

router = APIRouter(prefix="/api/v1", route_class=ExactPathRoute)  # ids from the raw path, see _paths
UserPath = Annotated[str, Path(min_length=1, max_length=256, description="The user's id (user_id of messages).")]
CheckpointPath = Annotated[str, Path(min_length=1, max_length=256, description="The checkpoint's id.")]
Role = Literal["system", "user", "assistant", "tool"]
_BOUND = "Exclusive bound: a message id of the session, or an ISO 8601 date-time such as 2026-01-31T12:00:00Z."


# -- request and response bodies -------------------------------------------------------------
class _Body(BaseModel):
    # Strict: a JSON true is not a number, nor "5" an integer, as the schema says.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class AttachmentRequest(_Body):
    uri: Name
    name: str | None = None
    media_type: str | None = None
    size_bytes: Annotated[int, Field(ge=0)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class MessageRequest(_Body):
    role: Role
    content: str | None = Field(None, description="The text; may be left out on an assistant message that only calls tools.")
    user_id: Name | None = None
    agent_id: Name | None = None
    metadata: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] | None = Field(
        None, description='On an assistant message: [{"id", "type": "function", "function": {"name", "arguments"}}].'
    )
    tool_call_id: Name | None = Field(None, description="On a tool message: the id of the call it answers.")
    attachments: list[AttachmentRequest] | None = Field(None, description="References to stored blobs or files.")

    def fields(self) -> dict[str, Any]:
        """The keyword arguments of ``Memory.add_message`` that were given."""
        fields = {name: value for name, value in self if value is not None}
        if self.attachments is not None:
            fields["attachments"] = [Attachment(**a.model_dump()) for a in self.attachments]
        return fields


class MessagesRequest(_Body):
    messages: Annotated[list[MessageRequest], Field(min_length=1, max_length=10_000)]


class MessageSearchBody(_Body):
    query: QueryText
    session_id: Name | None = Field(None, description="Only messages of this session.")
    user_id: Name | None = Field(None, description="Only messages of this user.")
    limit: Limit = 10
    mode: SearchMode = Field(
        "auto", description="auto (hybrid where messages have embeddings, else fts), fts, vector or hybrid."
    )
    threshold: Annotated[float, Field(ge=-1.0, le=1.0)] | None = Field(None, description="Minimum vector similarity.")


class CheckpointRequest(_Body):
    state: Any = Field(description="The run's state: any JSON value.")
    run_id: Name | None = None
    status: Literal["paused", "resumed"] = "paused"


class ResumedCheckpoint(_Body):
    """A checkpoint just resumed: its id and the state to continue from."""

    id: str
    state: Any = None


# -- messages ---------------------------------------------------------------------------------
@router.post("/sessions/{session_id}/messages", name="messages.add", status_code=201, response_model=Message,
             responses=errors(413), tags=["messages"])
def add_message(session_id: IdPath, body: MessageRequest, caller: CallerDep) -> Message:
    """Append one message to a session's history; an id never seen before starts that session.

    A new session's id is 1 to 128 letters, digits and `_ . : @ -`, starting with a letter or digit.
    """
    fields = body.fields()
    return caller.memory.add_message(session_id, fields.pop("role"), fields.pop("content", None), **fields)


@router.post("/sessions/{session_id}/messages/batch", name="messages.add_many", status_code=201,
             response_model=list[Message], responses=errors(413), tags=["messages"])
def add_messages(session_id: IdPath, body: MessagesRequest, caller: CallerDep) -> list[Message]:
    """Append many messages in order, in one transaction; all or nothing. An unknown session id starts that session."""
    caller.target = f"{session_id} ({len(body.messages)} messages)"
    return caller.memory.add_messages([m.fields() for m in body.messages], session_id=session_id)


@router.get("/sessions/{session_id}/messages", name="messages.history", response_model=list[Message],
            responses=errors(404), tags=["messages"])
def history(
    session_id: IdPath,
    caller: CallerDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="Only the newest N (default: all).")] = None,
    before: Annotated[str | None, Query(min_length=1, max_length=256, description=_BOUND)] = None,
    after: Annotated[str | None, Query(min_length=1, max_length=256, description=_BOUND)] = None,
) -> list[Message]:
    """A session's messages, oldest first (with limit: the newest N, still oldest first)."""
    return lookups.history_of(caller.memory, session_id, limit=limit, before=before, after=after)


@router.delete("/sessions/{session_id}/messages", name="messages.delete", response_model=DeletedCount,
               responses=errors(404), tags=["messages"])
def delete_history(session_id: IdPath, caller: CallerDep) -> DeletedCount:
    """Delete every message of a session, and its summary; 404 for an unknown session."""
    return DeletedCount(deleted=caller.memory.delete_history(session_id))


@router.post("/messages/search", name="messages.search", response_model=MessageSearchResult,
             responses=errors(400), tags=["messages"])
def search_messages(body: MessageSearchBody, caller: CallerDep) -> MessageSearchResult:
    """Search message content by words, meaning or both, best first: {"count", "results": [{"message", "score", "match_type", ...}]}."""
    return caller.memory.search_messages(
        body.query, mode=body.mode, threshold=body.threshold, session_id=body.session_id, user_id=body.user_id,
        limit=body.limit,
    )


@router.get("/sessions/{session_id}/summary", name="summaries.get", response_model=Summary,
            responses=errors(404), tags=["messages"])
def get_summary(session_id: IdPath, caller: CallerDep) -> Summary:
    """A session's running summary and how many messages it covers."""
    return lookups.summary_of(caller.memory, session_id)


# -- profiles ---------------------------------------------------------------------------------
@router.get("/users/{user_id}/profile", name="profiles.get", response_model=Profile, responses=errors(404),
            tags=["profiles"])
def get_profile(user_id: UserPath, caller: CallerDep) -> Profile:
    """What is known about a user: traits, each with the ids of the messages it came from."""
    return lookups.profile_of(caller.memory, user_id)


@router.delete("/users/{user_id}/profile", name="profiles.delete", status_code=204, responses=errors(404),
               tags=["profiles"])
def delete_profile(user_id: UserPath, caller: CallerDep) -> Response:
    """Forget what is known about a user."""
    if not caller.memory.profile_delete(user_id):
        raise NotFound(f"no profile for user {user_id!r}")
    return Response(status_code=204)


# -- checkpoints ------------------------------------------------------------------------------
@router.post("/sessions/{session_id}/checkpoints", name="checkpoints.save", status_code=201,
             response_model=Checkpoint, responses=errors(404, 413), tags=["checkpoints"])
def save_checkpoint(session_id: IdPath, body: CheckpointRequest, caller: CallerDep) -> Checkpoint:
    """Save an agent run's state (JSON), e.g. while it waits for a human."""
    checkpoint = caller.memory.checkpoint_save(session_id, body.state, run_id=body.run_id, status=body.status)
    caller.target = f"{session_id}/{checkpoint.id}"
    return checkpoint


@router.get("/sessions/{session_id}/checkpoints", name="checkpoints.list", response_model=list[Checkpoint],
            responses=errors(404), tags=["checkpoints"])
def list_checkpoints(
    session_id: IdPath, caller: CallerDep, status: Literal["paused", "resumed"] | None = None
) -> list[Checkpoint]:
    """A session's checkpoints, newest first, optionally only paused or resumed ones."""
    return lookups.checkpoints_of(caller.memory, session_id, status)


@router.get("/checkpoints/{checkpoint_id}", name="checkpoints.get", response_model=Checkpoint,
            responses=errors(404), tags=["checkpoints"])
def get_checkpoint(checkpoint_id: CheckpointPath, caller: CallerDep) -> Checkpoint:
    """One checkpoint with its state."""
    return lookups.checkpoint_of(caller.memory, checkpoint_id)


@router.post("/checkpoints/{checkpoint_id}/resume", name="checkpoints.resume", response_model=ResumedCheckpoint,
             responses=errors(404, 409), tags=["checkpoints"])
def resume_checkpoint(checkpoint_id: CheckpointPath, caller: CallerDep) -> ResumedCheckpoint:
    """Mark a paused checkpoint resumed and return its state; a second resume is a 409."""
    return ResumedCheckpoint(id=checkpoint_id, state=caller.memory.checkpoint_resume(checkpoint_id))


@router.delete("/checkpoints/{checkpoint_id}", name="checkpoints.delete", status_code=204, responses=errors(404),
               tags=["checkpoints"])
def delete_checkpoint(checkpoint_id: CheckpointPath, caller: CallerDep) -> Response:
    """Delete a checkpoint."""
    lookups.delete_checkpoint(caller.memory, checkpoint_id)
    return Response(status_code=204)
