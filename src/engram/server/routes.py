"""REST routes over the facade: memories, search, namespaces, sessions, tasks, stats, variables.

Thin by design: parse the request, call the caller's project ``Memory`` (or the
control plane), return the model. Every route is scoped to the key's project.
"""

from __future__ import annotations

import inspect
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, BeforeValidator, Field

from engram import validation as check
from engram.errors import InvalidInput, NotFound
from engram.memory import Memory, lookups
from engram.models import Entry, PruneReport, SearchResult, Session, Stats, Task
from engram.server._paths import PATH_RULE, ExactPathRoute
from engram.server.deps import AdminDep, CallerDep
from engram.server.models import (
    DeletedCount,
    ErrorResponse,
    Limit,
    Name,
    QueryText,
    SessionEndRequest,
    SessionMetadataRequest,
    SessionStartRequest,
    StoreManyRequest,
    StoreManyResult,
    StoreRequest,
    TaskCreateRequest,
    TaskUpdateRequest,
    Variable,
    VariableInfo,
    VariableSetRequest,
)

_ERRORS = {
    400: "Bad request (e.g. a query that cannot be parsed)",
    401: "Missing, malformed, unknown, expired or revoked API key",
    403: "The key's role does not allow this",
    404: "Not found (in the key's project)",
    409: "Conflict with the record's state",
    413: "Content over the size limit",
    422: "Invalid input",
    429: "Too many failed authentications",
    501: "The store lacks the capability (e.g. vector search)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for the error codes a route can answer with (all in the one error shape).

    400 (a body that is not UTF-8 JSON), 401, 422 and 429 can happen on every route.
    """
    wanted = {400, 401, 422, 429, *codes}
    return {code: {"model": ErrorResponse, "description": _ERRORS[code]} for code in sorted(wanted)}


# Path parameters come from the raw path, split into segments and then decoded (see _paths).
router = APIRouter(prefix="/api/v1", route_class=ExactPathRoute)
NamespacePath = Annotated[str, Path(min_length=1, max_length=256, description=f"Namespace of the entry. {PATH_RULE}")]
KeyPath = Annotated[str, Path(min_length=1, max_length=256, description=(
    f"Key of the entry. {PATH_RULE} A raw `/` after the namespace belongs to the key."))]
IdPath = Annotated[str, Path(min_length=1, max_length=256)]
VariablePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Variable name.")]

def _iso_only(value: Any) -> Any:
    """ISO 8601 text only: pydantic would also read "0.5" as a Unix time, which the schema does not promise."""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*", value):
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]

# Semantic search is added to Memory.search by another change; pass mode/threshold when it takes them.
_SEARCH_PARAMS = frozenset(inspect.signature(Memory.search).parameters)
SearchMode = Literal["auto", "fts", "vector", "hybrid"]


class SearchBody(BaseModel):
    model_config = {"extra": "forbid"}

    query: QueryText
    namespace: Name | None = None
    limit: Limit = 10
    metadata: dict[str, str | int | float | bool | None] | None = Field(None, description="Equality filters.")
    mode: SearchMode | None = Field(
        None, description="auto (default: hybrid where embeddings exist, else fts), fts, vector or hybrid."
    )
    threshold: Annotated[float, Field(ge=-1.0, le=1.0)] | None = Field(None, description="Minimum vector similarity.")


def search_kwargs(mode: str | None, threshold: float | None) -> dict[str, Any]:
    """The optional search arguments this engram's ``Memory.search`` understands."""
    kwargs: dict[str, Any] = {}
    for name, value in (("mode", mode), ("threshold", threshold)):
        if value is None:
            continue
        if name in _SEARCH_PARAMS:
            kwargs[name] = value
        elif not (name == "mode" and value == "fts"):
            raise InvalidInput(f"{name} is not supported by this engram: only full-text search (mode fts) is available")
    return kwargs


# -- memories ----------------------------------------------------------------------------
@router.post("/memories", name="memories.store", status_code=201, response_model=Entry,
             responses=errors(404, 409, 413), tags=["memories"])
def store_memory(body: StoreRequest, caller: CallerDep) -> Entry:
    """Store (upsert) one memory under (namespace, key)."""
    caller.target = f"{body.namespace}/{body.key}"
    return caller.memory.store(
        body.key, body.content, namespace=body.namespace, metadata=body.metadata, ttl=body.ttl, context=body.context
    )


@router.post("/memories/batch", name="memories.store_many", response_model=StoreManyResult,
             responses=errors(409, 413), tags=["memories"])
def store_many(body: StoreManyRequest, caller: CallerDep) -> StoreManyResult:
    """Store many memories in one transaction; all or nothing."""
    caller.target = f"{len(body.items)} items"
    items = [item.model_dump(exclude_none=True) for item in body.items]
    stored = caller.memory.store_many(items, namespace=body.namespace, context_window=body.context_window)
    return StoreManyResult(stored=stored)


@router.get("/memories", name="memories.list", response_model=list[Entry], responses=errors(400), tags=["memories"])
def list_memories(
    caller: CallerDep,
    namespace: Annotated[Name | None, Query(description="Only this namespace (default: all).")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    key_prefix: Annotated[Name | None, Query(description="Only keys starting with this.")] = None,
    metadata: Annotated[str | None, Query(description='Equality filters as a JSON object, e.g. {"topic": "food"}.')] = None,
    order: Annotated[Literal["updated_desc", "updated_asc"],
                     Query(description="By update time: newest (updated_desc) or oldest (updated_asc) first.")] = "updated_desc",
) -> list[Entry]:
    """Live entries, newest updated first unless order=updated_asc."""
    return caller.memory.list(
        namespace=namespace, limit=limit, offset=offset, key_prefix=key_prefix, metadata=_json_object("metadata", metadata),
        order=order,
    )


@router.get("/memories/{namespace:segment}/{key:path}", name="memories.get", response_model=Entry,
            responses=errors(404), tags=["memories"])
def get_memory(namespace: NamespacePath, key: KeyPath, caller: CallerDep) -> Entry:
    """The entry under exactly (namespace, key).

    Each name is one percent-encoded segment (`/` is `%2F`, `%` is `%25`, `.`/`..` are `%2E`/`%2E%2E`):
    `/memories/a%2Fb/k` is (`a/b`, `k`) and `/memories/a/b%2Fk` or `/memories/a/b/k` is (`a`, `b/k`).
    """
    entry = caller.memory.get(key, namespace=namespace)
    if entry is None:
        raise NotFound(f"no entry {key!r} in namespace {namespace!r}")
    return entry


@router.delete("/memories/{namespace:segment}/{key:path}", name="memories.delete", status_code=204,
               responses=errors(404), tags=["memories"])
def delete_memory(namespace: NamespacePath, key: KeyPath, caller: CallerDep) -> Response:
    """Delete the entry under exactly (namespace, key), named in the path as for GET; nothing else."""
    if not caller.memory.delete(key, namespace=namespace):
        raise NotFound(f"no entry {key!r} in namespace {namespace!r}")
    return Response(status_code=204)


@router.get("/namespaces", name="namespaces.list", response_model=list[str], responses=errors(), tags=["memories"])
def list_namespaces(caller: CallerDep) -> list[str]:
    """Namespaces holding at least one live entry."""
    return caller.memory.namespaces()


@router.delete("/namespaces/{namespace:segment}", name="namespaces.delete", response_model=DeletedCount,
               responses=errors(), tags=["memories"])
def delete_namespace(namespace: NamespacePath, caller: CallerDep) -> DeletedCount:
    """Delete every entry of exactly this namespace (one percent-encoded segment: `/` is `%2F`)."""
    return DeletedCount(deleted=caller.memory.delete_namespace(namespace))


@router.post("/search", name="search", response_model=SearchResult, responses=errors(400, 501), tags=["search"])
def search(body: SearchBody, caller: CallerDep) -> SearchResult:
    """Search, best first: {"count", "results": [{"entry", "score", "match_type"}]} like `engram search --json`."""
    return caller.memory.search(
        body.query, namespace=body.namespace, limit=body.limit, metadata=body.metadata,
        **search_kwargs(body.mode, body.threshold),
    )


# -- sessions ------------------------------------------------------------------------------
@router.post("/sessions", name="sessions.start", status_code=201, response_model=Session,
             responses=errors(413), tags=["sessions"])
def start_session(caller: CallerDep, body: SessionStartRequest | None = None) -> Session:
    """Start an active session."""
    session = caller.memory.session_start(
        body.metadata if body else None,
        user_id=body.user_id if body else None,
        agent_id=body.agent_id if body else None,
    )
    caller.target = session.id
    return session


@router.get("/sessions", name="sessions.list", response_model=list[Session], responses=errors(), tags=["sessions"])
def list_sessions(
    caller: CallerDep,
    status: Literal["active", "ended", "error"] | None = None,
    ended_before: IsoDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    user_id: Annotated[Name | None, Query(description="Only sessions of this user.")] = None,
    agent_id: Annotated[Name | None, Query(description="Only sessions of this agent.")] = None,
    sort: Annotated[Literal["newest", "oldest"], Query(description="By start time: newest or oldest first.")] = "newest",
) -> list[Session]:
    """Sessions filtered by status, end time, user and agent; newest started first unless sort=oldest."""
    return caller.memory.sessions(
        status=status, ended_before=ended_before, limit=limit, offset=offset, user_id=user_id, agent_id=agent_id, sort=sort
    )


@router.get("/sessions/{session_id}", name="sessions.get", response_model=Session, responses=errors(404), tags=["sessions"])
def get_session(session_id: IdPath, caller: CallerDep) -> Session:
    """One session."""
    return lookups.session_of(caller.memory, session_id)


@router.delete("/sessions/{session_id}", name="sessions.delete", status_code=204, responses=errors(404),
               tags=["sessions"])
def delete_session(session_id: IdPath, caller: CallerDep) -> Response:
    """Delete a session with its messages, summary, checkpoints, runs and tasks (never its user's profile)."""
    lookups.delete_session(caller.memory, session_id)
    return Response(status_code=204)


@router.get("/sessions/{session_id}/metadata", name="sessions.metadata", response_model=dict[str, Any],
            responses=errors(404), tags=["sessions"])
def get_session_metadata(session_id: IdPath, caller: CallerDep) -> dict[str, Any]:
    """A session's metadata."""
    return caller.memory.session_metadata(session_id)


@router.patch("/sessions/{session_id}/metadata", name="sessions.update_metadata", response_model=Session,
              responses=errors(404, 413), tags=["sessions"])
def update_session_metadata(session_id: IdPath, body: SessionMetadataRequest, caller: CallerDep) -> Session:
    """Merge keys into a session's metadata (null removes a key), or replace it; returns the session."""
    return caller.memory.session_update(session_id, body.metadata, replace=body.replace)


@router.post("/sessions/{session_id}/end", name="sessions.end", response_model=Session,
             responses=errors(404, 409), tags=["sessions"])
def end_session(session_id: IdPath, caller: CallerDep, body: SessionEndRequest | None = None) -> Session:
    """End an active session as ended or error."""
    return caller.memory.session_end(session_id, status=body.status if body else "ended")


# -- tasks -----------------------------------------------------------------------------------
@router.post("/tasks", name="tasks.create", status_code=201, response_model=Task,
             responses=errors(404, 413), tags=["tasks"])
def create_task(body: TaskCreateRequest, caller: CallerDep) -> Task:
    """Create a pending task, optionally inside a session."""
    task = caller.memory.task_create(body.agent_type, body.input, session_id=body.session_id)
    caller.target = task.id
    return task


@router.get("/tasks", name="tasks.list", response_model=list[Task], responses=errors(), tags=["tasks"])
def list_tasks(
    caller: CallerDep,
    session_id: Annotated[Name | None, Query()] = None,
    status: Literal["pending", "running", "completed", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[Task]:
    """Tasks, newest created first."""
    return caller.memory.tasks(session_id=session_id, status=status, limit=limit, offset=offset)


@router.get("/tasks/{task_id}", name="tasks.get", response_model=Task, responses=errors(404), tags=["tasks"])
def get_task(task_id: IdPath, caller: CallerDep) -> Task:
    """One task."""
    task = caller.memory.task_get(task_id)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    return task


@router.patch("/tasks/{task_id}", name="tasks.update", response_model=Task,
              responses=errors(404, 413), tags=["tasks"])
def update_task(task_id: IdPath, body: TaskUpdateRequest, caller: CallerDep) -> Task:
    """Move a task to a status (completed/failed set completed_at); output null keeps the output."""
    return caller.memory.task_update(task_id, body.status, output=body.output)


# -- operations ------------------------------------------------------------------------------
@router.get("/stats", name="stats", response_model=Stats, responses=errors(), tags=["operations"])
def stats(caller: CallerDep) -> Stats:
    """Counts of what the key's project holds (its url names the project, not a file)."""
    return caller.memory.stats().model_copy(update={"url": f"project:{caller.principal.project}"})


class PruneBody(BaseModel):
    model_config = {"extra": "forbid", "strict": True}  # strict: JSON true is not a number of days

    older_than_days: Annotated[float, Field(ge=0, le=36500, allow_inf_nan=False)] | None = Field(
        None, description="Also remove messages and checkpoints created, and sessions ended, this many days ago."
    )
    keep_last_per_session: Annotated[int, Field(ge=0, le=1_000_000_000)] | None = Field(
        None, description="Keep only the newest N messages of each session."
    )
    namespace: Name | None = Field(None, description="Only expired entries of this namespace (conversation records stay).")
    session_id: Name | None = Field(None, description="Only conversation records of this session (entries stay).")
    dry_run: bool = Field(False, description="Count what would go; remove nothing.")


@router.post("/prune", name="prune", response_model=PruneReport, responses=errors(403), tags=["operations"])
def prune(caller: AdminDep, body: PruneBody | None = None) -> PruneReport:
    """Retention for the key's project (admin): expired entries, and old conversation records when asked."""
    body = body or PruneBody()
    options = body.model_dump(exclude_none=True)
    caller.target = " ".join(f"{k}={v}" for k, v in options.items() if k != "dry_run" or v) or None
    return caller.memory.prune(**options)


# -- variables --------------------------------------------------------------------------------
@router.get("/variables", name="variables.list", response_model=list[VariableInfo], responses=errors(),
            tags=["variables"])
def list_variables(caller: CallerDep) -> list[VariableInfo]:
    """Names of the project's variables; never their values."""
    return caller.control.variables(caller.project_id)


@router.get("/variables/{name}", name="variables.get", response_model=Variable, responses=errors(404),
            tags=["variables"])
def get_variable(name: VariablePath, caller: CallerDep) -> Variable:
    """One variable with its decrypted value: the only way a value leaves the server."""
    return caller.control.variable(caller.project_id, name)


@router.put("/variables/{name}", name="variables.set", response_model=VariableInfo, responses=errors(403),
            tags=["variables"])
def set_variable(name: VariablePath, body: VariableSetRequest, caller: AdminDep) -> VariableInfo:
    """Create or replace a variable, encrypted at rest (admin)."""
    return caller.control.set_variable(caller.project_id, name, body.value)


@router.delete("/variables/{name}", name="variables.delete", status_code=204, responses=errors(403, 404),
               tags=["variables"])
def delete_variable(name: VariablePath, caller: AdminDep) -> Response:
    """Delete a variable (admin)."""
    caller.control.delete_variable(caller.project_id, name)
    return Response(status_code=204)


def _json_object(name: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = check.json_text(name, text)
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a JSON object, not {type(value).__name__}")
    return value
