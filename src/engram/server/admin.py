"""Admin routes: projects, users, API keys and the transaction log.

Projects, users and pruning the log are the server administrator's. Keys and the
log are also a project admin's, for its own project only: every such route passes
the project it was asked about through ``caller.scope_project``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from engram.server.deps import AdminDep, ServerAdminDep
from engram.server.models import (
    ApiKey,
    CreatedKey,
    KeyCreateRequest,
    Project,
    ProjectCreateRequest,
    PruneResult,
    Transaction,
    User,
    UserCreateRequest,
)
from engram.server.routes import IsoDatetime, errors
from engram.stores.control_base import TransactionQuery

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
IdentPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
IdentQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


@router.get("/projects", name="admin.projects.list", response_model=list[Project], responses=errors(403))
def list_projects(caller: ServerAdminDep) -> list[Project]:
    """Every project."""
    return caller.control.projects()


@router.post("/projects", name="admin.projects.create", status_code=201, response_model=Project,
             responses=errors(403, 409))
def create_project(body: ProjectCreateRequest, caller: ServerAdminDep) -> Project:
    """Create a project (its own store, its own keys and variables)."""
    caller.target = body.name
    return caller.control.create_project(body.name)


@router.get("/users", name="admin.users.list", response_model=list[User], responses=errors(403))
def list_users(caller: ServerAdminDep) -> list[User]:
    """Every user."""
    return caller.control.users()


@router.post("/users", name="admin.users.create", status_code=201, response_model=User, responses=errors(403, 409))
def create_user(body: UserCreateRequest, caller: ServerAdminDep) -> User:
    """Create a user that keys can be issued to."""
    caller.target = body.name
    return caller.control.create_user(body.name)


@router.delete("/users/{name}", name="admin.users.delete", status_code=204, responses=errors(403, 404))
def delete_user(name: IdentPath, caller: ServerAdminDep) -> Response:
    """Delete a user and revoke every key issued to them."""
    caller.control.delete_user(name)
    return Response(status_code=204)


@router.get("/keys", name="admin.keys.list", response_model=list[ApiKey], responses=errors(403, 404))
def list_keys(caller: AdminDep, project: IdentQuery = None, include_revoked: bool = False) -> list[ApiKey]:
    """API keys (prefixes, never the keys), optionally of one project (a project admin: its own)."""
    return caller.control.keys(caller.scope_project(project), include_revoked=include_revoked)


@router.post("/keys", name="admin.keys.create", status_code=201, response_model=CreatedKey, responses=errors(403, 404))
def create_key(body: KeyCreateRequest, caller: AdminDep) -> CreatedKey:
    """Issue an API key; the response holds the key, shown this once.

    A project admin issues admin and member keys of its own project; the server
    administrator, keys of any project and server_admin keys (of the default project).
    """
    project = caller.scope_project(body.project) or caller.principal.project
    caller.check_grant(body.role)
    created = caller.control.create_key(
        project, body.role, user=body.user, name=body.name, expires_in_days=body.expires_in_days
    )
    caller.target = created.prefix
    return created


@router.delete("/keys/{key_id}", name="admin.keys.revoke", response_model=ApiKey, responses=errors(403, 404, 409))
def revoke_key(key_id: Annotated[str, Path(min_length=1, max_length=64)], caller: AdminDep) -> ApiKey:
    """Revoke a key (by id or prefix); it stops working at once. A project admin: its own project's keys."""
    return caller.control.revoke_key(key_id, project=caller.scope_project(None))


@router.get("/transactions", name="admin.transactions.list", response_model=list[Transaction],
            responses=errors(403, 404))
def list_transactions(
    caller: AdminDep,
    project: IdentQuery = None,
    operation: Annotated[str | None, Query(max_length=128)] = None,
    outcome: Annotated[str | None, Query(max_length=128)] = None,
    key_id: Annotated[str | None, Query(max_length=64)] = None,
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[Transaction]:
    """The transaction log, newest first, filtered by project (a project admin: its own), operation,
    outcome, key and time."""
    query = TransactionQuery(
        operation=operation, outcome=outcome, key_id=key_id, since=since, until=until, limit=limit, offset=offset
    )
    return caller.control.transactions(query, project=caller.scope_project(project))


@router.delete("/transactions", name="admin.transactions.prune", response_model=PruneResult, responses=errors(403))
def prune_transactions(
    caller: ServerAdminDep, older_than_days: Annotated[float, Query(ge=0, le=36500)] = 30
) -> PruneResult:
    """Delete log records older than ``older_than_days`` (retention)."""
    return PruneResult(pruned=caller.control.prune_transactions(older_than_days))
