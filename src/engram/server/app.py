"""The FastAPI application: REST under /api/v1, /health, /openapi.json, /docs, MCP at /mcp, the dashboard at /."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from engram import __version__
from engram.config import Settings, load_settings
from engram.errors import EngramError
from engram.server import _errors
from engram.server._body_limit import BodyLimit
from engram.server._shared_limiter import limiter_for
from engram.server.clients import TrustedProxies
from engram.server.deps import authenticate_headers
from engram.server.tenancy import Tenancy

DESCRIPTION = """Persistent memory for AI agents.

Every route under `/api/v1` needs an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`)
and works inside the key's project. A project's admin keys also manage its keys and variables and
read its transaction log; the server administrator's key (the first one, or `ENGRAM_ADMIN_KEY`)
manages projects, users and keys of every project and reads the whole log.
Every error has one shape: `{"error": {"type", "status", "message", "details"}}`.
MCP (streamable HTTP) is served at `/mcp` with the same keys, and a web dashboard at `/`
(sign in with a key).
"""


class MCPEndpoint:
    """``/mcp``: authenticates like the REST API, then hands the request to the MCP session manager.

    The principal travels in the ASGI scope's state, where the tools read it
    (``ctx.request_context.request.state``) to pick the key's project.
    """

    def __init__(self, app: FastAPI):
        self.app = app
        self.handler: Any = None  # set while the app runs (see lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        state = self.app.state
        try:
            principal = await run_in_threadpool(  # a database lookup: never on the event loop
                authenticate_headers, state.tenancy, state.limiter, state.proxies.client_of_scope(scope),
                headers.get("authorization"), headers.get("x-api-key"),
            )
        except EngramError as exc:
            await _errors.engram_error_response(exc)(scope, receive, send)
            return
        if self.handler is None:
            await _errors.error_response(503, "BackendError", "the MCP endpoint is not running")(scope, receive, send)
            return
        scope.setdefault("state", {})["engram_principal"] = principal
        await self.handler(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    tenancy: Tenancy | None = None,
    max_auth_failures: int = 20,
    auth_window: float = 60.0,
    forwarded_allow_ips: str | None = None,
) -> FastAPI:
    """Build the server over ``tenancy`` (or one opened from ``settings``; closed on shutdown).

    ``forwarded_allow_ips`` (default: the settings') names the proxies whose
    X-Forwarded-For / Forwarded headers say who the client is.
    """
    from engram.server import admin, blobs, chat, dashboard, routes, runs
    from engram.server.blobs import blob_body_limit
    from engram.server.mcp import Target, build_mcp_server

    owned = tenancy is None
    tenancy = tenancy or Tenancy(settings or load_settings())

    def resolve(ctx: Any) -> Target:
        principal = ctx.request_context.request.state.engram_principal

        def record(operation: str, target: str | None, outcome: str, status: int, ms: float) -> None:
            tenancy.control.record(principal, operation, target, outcome, status, ms)

        return Target(tenancy.memory(principal.project_id), record)

    mcp_server = build_mcp_server(resolve)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A session manager runs once; build a fresh one for every start of the app.
        # Host/Origin checks are off: they guard key-less local servers against DNS
        # rebinding, and every request here must carry an API key a rebinding page lacks.
        mcp_server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = mcp_server.session_manager
        async with manager.run():
            endpoint.handler = manager.handle_request
            try:
                yield
            finally:
                endpoint.handler = None
                getattr(app.state.limiter, "close", lambda: None)()
                if owned:
                    tenancy.close()

    # /docs and /redoc with Swagger UI and ReDoc served from the installed package: no CDN.
    app = FastAPIOffline(
        title="engram",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    )
    app.state.tenancy = tenancy
    # In process memory, or shared by every server on the database (or in Redis): auth_failures_url.
    app.state.limiter = limiter_for(tenancy.settings, tenancy.control.store, max_auth_failures, auth_window)
    app.state.proxies = TrustedProxies(
        tenancy.settings.forwarded_allow_ips if forwarded_allow_ips is None else forwarded_allow_ips
    )
    # Added before the error middleware, which wraps it: a 413 raised while reading is answered as such.
    app.add_middleware(
        BodyLimit,
        max_bytes=tenancy.settings.max_request_bytes,
        routes={("POST", "/api/v1/blobs"): blob_body_limit(tenancy.settings)},
    )
    _errors.install(app)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: answers without a key, on the event loop (no worker thread to wait for)."""
        return {"status": "ok", "version": __version__}

    app.include_router(routes.router)
    app.include_router(chat.router)
    app.include_router(runs.router)
    app.include_router(blobs.router)
    app.include_router(admin.router)
    dashboard.install(app)
    endpoint = MCPEndpoint(app)
    app.router.routes.append(Route("/mcp", endpoint=endpoint, include_in_schema=False))
    return app
