"""The web dashboard, served by ``engram serve`` at ``/`` beside the API under ``/api/v1``.

Server-rendered Jinja2 pages and plain HTML forms over the same ``Memory`` and
``ControlPlane`` calls as the REST routes: no build step, no JavaScript needed,
every asset (one stylesheet) shipped in the package, and pages small enough to
stay far under 200 KB. Sign-in exchanges an API key for a session cookie
(``sessions``); roles are checked by the API's own ``deps.admin`` /
``deps.server_admin`` and ``Caller.scope_project``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from engram.server.dashboard._shared_sessions import session_store_for
from engram.server.dashboard.sessions import SessionStore
from engram.server.dashboard.web import HERE


def install(app: FastAPI, sessions: SessionStore | None = None) -> None:
    """Add the dashboard's pages and static files to ``app``."""
    from engram.server.dashboard import pages_admin, pages_auth, pages_data, pages_sessions

    # In this process, or (PostgreSQL) in the control schema, so that every server knows a sign-in.
    app.state.dashboard_sessions = sessions or session_store_for(app.state.tenancy.control.store)
    for module in (pages_auth, pages_data, pages_sessions, pages_admin):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
