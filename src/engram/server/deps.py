"""Who is calling, for every route: authentication, roles, the project's store, the log.

``caller`` authenticates the key (``Authorization: Bearer`` or ``X-API-Key``),
refuses clients over the failed-authentication limit, and hands the route a
:class:`Caller` bound to the key's project. For writes it records the outcome
in the transaction log once the route has finished, failed or succeeded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from engram.errors import AuthError, EngramError, PermissionDenied
from engram.memory import Memory
from engram.server.models import Principal
from engram.server.ratelimit import FailureLimiter
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


def client_address(scope_client: tuple[str, int] | None) -> str:
    return scope_client[0] if scope_client else "unknown"


def authenticate(tenancy: Tenancy, limiter: FailureLimiter, client: str, key: str | None) -> Principal:
    """The principal of ``key``, counting failures against ``client``.

    Raises:
        RateLimited: the client failed too often recently.
        AuthError: the key is missing, malformed, unknown, expired or revoked.
    """
    limiter.check(client)
    try:
        return tenancy.control.authenticate(key)
    except AuthError:
        limiter.fail(client)
        raise


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
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_header)],
) -> AsyncIterator[Caller]:
    tenancy: Tenancy = request.app.state.tenancy
    limiter: FailureLimiter = request.app.state.limiter
    client = client_address(request.client)
    limiter.check(client)
    try:
        key = presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
    except AuthError:
        limiter.fail(client)
        raise
    principal = authenticate(tenancy, limiter, client, key)
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
        tenancy.control.record(principal, operation, target, outcome, status, (time.perf_counter() - start) * 1000)


async def admin(current: Annotated[Caller, Depends(caller)]) -> Caller:
    if current.principal.role != "admin":
        raise PermissionDenied(f"this needs an admin key; key {current.principal.key_prefix} is a {current.principal.role} key")
    return current


CallerDep = Annotated[Caller, Depends(caller)]
AdminDep = Annotated[Caller, Depends(admin)]
