"""Administration: projects, users, keys, variables and the transaction log.

Who may see what is decided by the REST API's own checks (``deps.admin``,
``deps.server_admin``, ``Caller.scope_project``, ``Caller.check_grant``); the work is
done by the same ``ControlPlane`` methods the admin routes call, and every
change is recorded in the transaction log under the REST route's name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from engram.errors import InvalidInput, NotFound
from engram.server.dashboard.web import (
    PageRoute,
    Viewer,
    admin_viewer,
    form_of,
    redirect,
    render,
    server_admin_viewer,
    viewer,
)
from engram.server.models import ROLES, ApiKey, Variable
from engram.stores.control_base import TransactionQuery

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
AdminDep = Annotated[Viewer, Depends(admin_viewer)]
ServerAdminDep = Annotated[Viewer, Depends(server_admin_viewer)]
Ident = Annotated[str, Query(max_length=64)]
LOG_PAGE = 100


def _optional(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


# -- projects and users (the server administrator) ------------------------------------------
@router.get("/admin/projects", name="dashboard.projects")
def projects(request: Request, current: ServerAdminDep) -> Response:
    return render(request, "projects.html", viewer=current, projects=current.control.projects())


async def _named_change(
    request: Request, current: Viewer, operation: str, change: Callable[[str], object], page: str, notice: str,
    *, strip: bool = False,
) -> Response:
    """``change`` the form's ``name`` (typed: ``strip`` it; from a confirm page: as is), logged as the REST
    route ``operation``; then back to ``page`` with ``notice``."""
    name = (await form_of(request, current)).get("name", "")
    if strip:
        name = name.strip()
    with current.logged(operation, name):
        change(name)
    return redirect(page, notice=notice)


def _confirm_named_delete(request: Request, current: Viewer, page: str, name: str, question: str) -> Response:
    """The page asking ``question`` before deleting ``name`` at ``page``/delete; cancel goes back to ``page``."""
    return render(request, "confirm.html", viewer=current, action=f"{page}/delete", fields={"name": name},
                  question=question, cancel=page)


@router.post("/admin/projects", name="dashboard.projects.create")
async def create_project(request: Request, current: ServerAdminDep) -> Response:
    return await _named_change(request, current, "admin.projects.create", current.control.create_project,
                               "/admin/projects", "created", strip=True)


@router.get("/admin/users", name="dashboard.users")
def users(request: Request, current: ServerAdminDep) -> Response:
    return render(request, "users.html", viewer=current, users=current.control.users())


@router.post("/admin/users", name="dashboard.users.create")
async def create_user(request: Request, current: ServerAdminDep) -> Response:
    return await _named_change(request, current, "admin.users.create", current.control.create_user, "/admin/users",
                               "created", strip=True)


@router.get("/admin/users/delete", name="dashboard.users.confirm")
def confirm_delete_user(request: Request, current: ServerAdminDep, name: Ident) -> Response:
    return _confirm_named_delete(request, current, "/admin/users", name,
                                 f"Delete user {name!r} and revoke every key issued to them?")


@router.post("/admin/users/delete", name="dashboard.users.delete")
async def delete_user(request: Request, current: ServerAdminDep) -> Response:
    return await _named_change(request, current, "admin.users.delete", current.control.delete_user, "/admin/users",
                               "deleted")


# -- keys (project admins: their project's) -------------------------------------------------
@router.get("/admin/keys", name="dashboard.keys")
def keys(request: Request, current: AdminDep, project: Ident = "", revoked: bool = False) -> Response:
    scope = current.caller.scope_project(project or None)
    return render(
        request, "keys.html", viewer=current, keys=current.control.keys(scope, include_revoked=revoked),
        project=scope or "", revoked=revoked,
        roles=[r for r in ROLES if current.is_server_admin or r != "server_admin"],
        projects=([p.name for p in current.control.projects()] if current.is_server_admin
                  else [current.principal.project]),
        users=[u.name for u in current.control.users()] if current.is_server_admin else [],
    )


@router.post("/admin/keys", name="dashboard.keys.create")
async def create_key(request: Request, current: AdminDep) -> Response:
    """Issue a key and show it this once (the page is never cached; the key is not kept)."""
    form = await form_of(request, current)
    project = current.caller.scope_project(form.get("project") or None) or current.principal.project
    role = form.get("role", "member")
    current.caller.check_grant(role)
    days = _optional(form.get("expires_in_days"))
    try:
        expires = None if days is None else float(days)
    except ValueError:
        raise InvalidInput(
            f"expires in days must be a number, got {days!r}; leave it empty for a key that never expires"
        ) from None
    with current.logged("admin.keys.create", project):
        created = current.control.create_key(project, role, user=_optional(form.get("user")),
                                             name=_optional(form.get("name")), expires_in_days=expires)
    return render(request, "key_created.html", viewer=current, created=created)


def _own_key(current: Viewer, key_id: str) -> ApiKey:
    """A key this admin may revoke; another project's key is "not found", as ``ControlPlane.revoke_key`` says."""
    key = current.control.key(key_id)
    scope = current.caller.scope_project(None)
    if scope is not None and key.project != scope:
        raise NotFound(f"API key {key_id} does not exist")
    return key


@router.get("/admin/keys/revoke", name="dashboard.keys.confirm")
def confirm_revoke_key(request: Request, current: AdminDep, id: Ident) -> Response:
    key = _own_key(current, id)
    return render(request, "confirm.html", viewer=current, action="/admin/keys/revoke", fields={"id": key.id},
                  question=f"Revoke key {key.prefix} ({key.role} of {key.project})? It stops working at once.",
                  verb="revoke",
                  cancel="/admin/keys")


@router.post("/admin/keys/revoke", name="dashboard.keys.revoke")
async def revoke_key(request: Request, current: AdminDep) -> Response:
    key = _own_key(current, (await form_of(request, current)).get("id", ""))
    with current.logged("admin.keys.revoke", key.id):
        current.control.revoke_key(key.id, project=current.caller.scope_project(None))
    return redirect("/admin/keys", notice="revoked")


# -- variables (names for everyone, values on an explicit click; changes by admins) -----------
def _variables_page(request: Request, current: Viewer, revealed: Variable | None) -> Response:
    names = current.control.variables(current.principal.project_id)
    return render(request, "variables.html", viewer=current, variables=names, revealed=revealed)


@router.get("/variables", name="dashboard.variables")
def variables(request: Request, current: ViewerDep) -> Response:
    return _variables_page(request, current, None)


@router.post("/variables/reveal", name="dashboard.variables.reveal")
async def reveal_variable(request: Request, current: ViewerDep) -> Response:
    """One variable's value, on this response only (no-store, never put in a URL)."""
    name = (await form_of(request, current)).get("name", "")
    return _variables_page(request, current, current.control.variable(current.principal.project_id, name))


@router.post("/variables", name="dashboard.variables.set")
async def set_variable(request: Request, current: AdminDep) -> Response:
    form = await form_of(request, current)
    name = form.get("name", "").strip()
    with current.logged("variables.set", name):
        current.control.set_variable(current.principal.project_id, name, form.get("value", ""))
    return redirect("/variables", notice="saved")


@router.get("/variables/delete", name="dashboard.variables.confirm")
def confirm_delete_variable(request: Request, current: AdminDep, name: Ident) -> Response:
    return _confirm_named_delete(request, current, "/variables", name, f"Delete variable {name!r}?")


@router.post("/variables/delete", name="dashboard.variables.delete")
async def delete_variable(request: Request, current: AdminDep) -> Response:
    project_id = current.principal.project_id
    return await _named_change(request, current, "variables.delete",
                               lambda name: current.control.delete_variable(project_id, name), "/variables", "deleted")


# -- the transaction log ----------------------------------------------------------------------
def _moment(field: str, text: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{field} must be a date or date-time such as 2026-01-31 or 2026-01-31T12:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@router.get("/admin/log", name="dashboard.log")
def log(
    request: Request,
    current: AdminDep,
    project: Ident = "",
    who: Annotated[str, Query(max_length=64)] = "",
    operation: Annotated[str, Query(max_length=128)] = "",
    outcome: Annotated[str, Query(max_length=128)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The transaction log, newest first, filtered by who (key id or prefix), operation, outcome and time."""
    scope = current.caller.scope_project(project or None)
    key_id = who.strip().rsplit("_", 1)[-1] if who.strip() else None
    query = TransactionQuery(
        operation=operation.strip() or None, outcome=outcome.strip() or None, key_id=key_id,
        since=_moment("since", since), until=_moment("until", until), limit=LOG_PAGE + 1, offset=(page - 1) * LOG_PAGE,
    )
    rows = current.control.transactions(query, project=scope)
    return render(request, "log.html", viewer=current, rows=rows[:LOG_PAGE], more=len(rows) > LOG_PAGE, page=page,
                  project=project, who=who, operation=operation, outcome=outcome, since=since, until=until)
