"""Who is calling, for every route: authentication, roles, the project's store, the log.

``caller`` authenticates the key (``Authorization: Bearer`` or ``X-API-Key``),
counts a failure against the client and the key (answering 429 past the limit;
a valid key is never refused), and hands the route a :class:`Caller` bound to
the key's project. For writes it records the outcome and the status sent in the
transaction log once the route has finished, failed or succeeded.

Roles: ``admin`` routes take a project admin or the server administrator, and
:meth:`Caller.scope_project` keeps a project admin to its own project;
``server_admin`` routes take the server administrator only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from engram.errors import AuthError, EngramError, PermissionDenied
from engram.memory import Memory
from engram.server import keys as api_keys
from engram.server.models import Principal
from engram.server.ratelimit import Limiter
from engram.server.tenancy import Tenancy

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that only read (a search body is too rich for a query string): not logged.
READ_ONLY_OPERATIONS = frozenset({"search", "messages.search"})
_bearer = HTTPBearer(auto_error=False, description="An engram API key: `Authorization: Bearer <key>`.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An engram API key.")


@dataclass
class Caller:
    """An authenticated request: its principal, its project's store, and what it targets (for the log)."""

    principal: Principal
    tenancy: Tenancy
    target: str | None = None
    _memory: Memory | None = field(default=None, repr=False)

    @property
    def memory(self) -> Memory:
        if self._memory is None:
            self._memory = self.tenancy.memory(self.principal.project_id)
        return self._memory

    @property
    def control(self):
        return self.tenancy.control

    @property
    def project_id(self) -> str:
        return self.principal.project_id

    def scope_project(self, requested: str | None) -> str | None:
        """The project an admin route acts on; the one place a project admin is kept to its own.

        The server administrator gets ``requested`` back (None: every project). A
        project admin gets its own project when ``requested`` is None or names it.

        Raises:
            PermissionDenied: a project admin named another project.
        """
        if self.principal.is_server_admin:
            return requested
        own = self.principal.project
        if requested is not None and requested != own:
            raise PermissionDenied(
                f"key {self.principal.key_prefix} administers project {own!r} only, not {requested!r}: "
                "leave project out, or use the server administrator's key"
            )
        return own

    def check_grant(self, role: str) -> None:
        """Refuse to issue a role above the caller's own.

        Raises:
            PermissionDenied: a project admin asked for a server_admin key.
        """
        if role == "server_admin" and not self.principal.is_server_admin:
            raise PermissionDenied("only the server administrator can create server_admin keys; ask for admin or member")


def request_client(request: Request) -> str:
    """Who the client is: the peer, or the address a trusted proxy forwarded (``forwarded_allow_ips``)."""
    return request.app.state.proxies.client_of_scope(request.scope)


def authenticate(tenancy: Tenancy, limiter: Limiter, client: str, key: str | None) -> Principal:
    """The principal of ``key``; a failure is counted against ``client`` and the key's visible prefix.

    The key is checked before the limiter is asked, so a valid key always gets through.

    Raises:
        AuthError: the key is missing, malformed, unknown, expired or revoked.
        RateLimited: it is, and this client or this key has failed too often recently.
    """
    try:
        return tenancy.control.authenticate(key)
    except AuthError:
        limiter.failed(client, api_keys.visible_prefix(key))
        raise


def authenticate_headers(
    tenancy: Tenancy, limiter: Limiter, client: str, authorization: str | None, x_api_key: str | None
) -> Principal:
    """:func:`authenticate` the key of ``Authorization`` / ``X-API-Key`` (a clash is a counted failure too)."""
    try:
        key = presented_key(authorization, x_api_key)
    except AuthError:
        limiter.failed(client)
        raise
    return authenticate(tenancy, limiter, client, key)


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key``.

    A header that is present must hold the key, even when the other one does:
    an empty or different second credential is refused, never ignored.

    Raises:
        AuthError: both headers are present and differ.
    """
    bearer = None
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        bearer = value.strip() if scheme.lower() == "bearer" else authorization.strip()
    if x_api_key is not None and bearer is not None and x_api_key.strip() != bearer:
        raise AuthError("Authorization and X-API-Key hold different keys: send one")
    return bearer if bearer is not None else (None if x_api_key is None else x_api_key.strip())


async def caller(
    request: Request,
    response: Response,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_header)],
) -> AsyncIterator[Caller]:
    tenancy: Tenancy = request.app.state.tenancy
    # Database calls run on a worker thread: on the event loop a slow or locked
    # database would stall every other request, /health included.
    principal = await run_in_threadpool(
        authenticate_headers, tenancy, request.app.state.limiter, request_client(request),
        request.headers.get("authorization"), request.headers.get("x-api-key"),
    )
    current = Caller(principal, tenancy)
    route = request.scope.get("route")
    operation = getattr(route, "name", None) or request.url.path
    if request.method not in WRITE_METHODS or operation in READ_ONLY_OPERATIONS:
        yield current
        return
    start = time.perf_counter()
    outcome, status = "ok", 200
    try:
        yield current
        # What was sent: a status the route set on the response, else the one it declares (201, 204).
        status = response.status_code or getattr(route, "status_code", None) or 200
    except EngramError as exc:
        outcome, status = type(exc).__name__, exc.status
        raise
    except RequestValidationError:
        outcome, status = "InvalidInput", 422
        raise
    except Exception as exc:
        outcome, status = type(exc).__name__, getattr(exc, "status_code", 500)
        raise
    finally:
        target = current.target
        if target is None and request.path_params:
            target = "/".join(str(v) for v in request.path_params.values())
        ms = (time.perf_counter() - start) * 1000
        await run_in_threadpool(tenancy.control.record, principal, operation, target, outcome, status, ms)


# "function" scope: the log row is written before the response is sent, so a write the
# client saw acknowledged is logged even if the server dies right after answering.
_CALLER = Depends(caller, scope="function")


async def admin(current: Annotated[Caller, _CALLER]) -> Caller:
    """A project admin (see :meth:`Caller.scope_project`) or the server administrator."""
    if not current.principal.is_admin:
        raise PermissionDenied(f"this needs an admin key; key {current.principal.key_prefix} is a {current.principal.role} key")
    return current


async def server_admin(current: Annotated[Caller, Depends(admin)]) -> Caller:
    """The server administrator only: projects, users, the whole log."""
    if not current.principal.is_server_admin:
        raise PermissionDenied(
            f"this needs the server administrator's key; key {current.principal.key_prefix} is an admin of "
            f"project {current.principal.project!r} only"
        )
    return current


CallerDep = Annotated[Caller, _CALLER]
AdminDep = Annotated[Caller, Depends(admin)]
ServerAdminDep = Annotated[Caller, Depends(server_admin)]
