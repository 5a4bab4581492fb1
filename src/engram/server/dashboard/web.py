"""What every dashboard page shares: templates, security headers, the signed-in viewer, CSRF, the log.

Pages are rendered on the server by Jinja2 with autoescaping on for every
template, so stored content is always text in the page; no template marks
stored data ``|safe``. Every response carries a strict Content-Security-Policy
(no inline script or style, nothing from another origin) and ``no-store``:
pages show private data and must not linger in caches.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from engram import __version__
from engram.errors import AuthError, EngramError, PermissionDenied
from engram.memory import Memory
from engram.server.dashboard.sessions import COOKIE, SessionStore, WebSession
from engram.server import deps
from engram.server.models import Principal
from engram.server.tenancy import Tenancy

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Short notices a redirect after a change may name (by code: the URL never carries free text).
NOTICES = {
    "saved": "Saved.", "deleted": "Deleted.", "revoked": "Key revoked.", "created": "Created.",
    "signed-out": "Signed out.",
}

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every template, whatever its file name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def quoted(value: Any) -> str:
    """A value inside a URL query (every reserved character escaped)."""
    return quote(str(value), safe="")


templates.filters["q"] = quoted
templates.globals["version"] = __version__


def _when(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


templates.filters["when"] = _when
# Only these become links (an attachment's javascript: or data: URI is shown as text).
templates.filters["linkable"] = lambda uri: isinstance(uri, str) and uri.lower().startswith(("https://", "http://"))


class SignedOut(Exception):
    """No valid dashboard session: the page answers with a redirect to the sign-in page."""


def secure(response: Response) -> Response:
    """Add the dashboard's security headers to a response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(request: Request, template: str, *, viewer: "Viewer | None" = None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """A page from ``templates/<template>`` with the viewer, its CSRF token and any notice."""
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = templates.get_template(template).render(
        request=request, viewer=viewer, csrf=viewer.session.csrf if viewer else "", notice=notice, **context
    )
    return secure(HTMLResponse(html, status_code=status_code))


def redirect(path: str, **query: Any) -> RedirectResponse:
    """A 303 to a dashboard path (after a form: the browser follows with GET)."""
    query = {k: v for k, v in query.items() if v is not None}
    return secure(RedirectResponse(path + ("?" + urlencode(query) if query else ""), status_code=303))


def error_page(request: Request, status: int, kind: str, message: str, viewer: "Viewer | None" = None) -> Response:
    return render(request, "error.html", viewer=viewer, status_code=status, kind=kind, message=message)


class PageRoute(APIRoute):
    """A dashboard route: errors become HTML pages (not the API's JSON), a missing session a sign-in redirect."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return secure(await handler(request))
            except SignedOut:
                target = request.url.path if request.method == "GET" else "/"
                if request.url.query and request.method == "GET":
                    target += "?" + request.url.query
                response = redirect("/login", next=target if target != "/" else None)
                response.delete_cookie(COOKIE, path="/")
                return response
            except EngramError as exc:
                status = exc.status if exc.status < 500 else 503
                message = exc.message if exc.status < 500 else "the store could not answer; try again"
                return error_page(request, status, type(exc).__name__, message, getattr(request.state, "viewer", None))
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())[1:]))}: {e.get('msg')}"
                                     for e in exc.errors()[:5])
                return error_page(request, 400, "InvalidInput", f"invalid request: {problems}",
                                  getattr(request.state, "viewer", None))

        return run


@dataclass
class Viewer:
    """A signed-in browser: its session and the API's :class:`~engram.server.deps.Caller` for its key.

    Pages reach data and the control plane through the caller exactly as the REST
    routes do, including ``caller.scope_project`` and ``caller.check_grant``.
    """

    principal: Principal
    session: WebSession
    caller: deps.Caller

    @property
    def memory(self) -> Memory:
        return self.caller.memory

    @property
    def control(self) -> Any:
        return self.caller.control

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def is_server_admin(self) -> bool:
        return self.principal.is_server_admin

    @contextlib.contextmanager
    def logged(self, operation: str, target: str | None) -> Iterator[None]:
        """Record a change in the transaction log under the REST route's operation name, as the API does."""
        start = time.perf_counter()
        outcome, status = "ok", 200
        try:
            yield
        except EngramError as exc:
            outcome, status = type(exc).__name__, exc.status
            raise
        finally:
            ms = (time.perf_counter() - start) * 1000
            self.control.record(self.principal, operation, target, outcome, status, ms)


def principal_of_key(tenancy: Tenancy, key_id: str) -> Principal:
    """The principal of a signed-in key, checked again on every request.

    Raises:
        SignedOut: the key was deleted, revoked or has expired since sign-in.
    """
    try:
        return tenancy.control.principal(key_id)
    except AuthError:
        raise SignedOut from None


def sessions_of(request: Request) -> SessionStore:
    return request.app.state.dashboard_sessions


async def viewer(request: Request) -> Viewer:
    """Dependency of every signed-in page: the viewer, or SignedOut."""
    token = request.cookies.get(COOKIE)
    # Database calls (the sign-in may live in PostgreSQL): on a worker thread, never on the event loop.
    session = await run_in_threadpool(sessions_of(request).get, token)
    if session is None:
        raise SignedOut
    try:
        principal = await run_in_threadpool(principal_of_key, request.app.state.tenancy, session.key_id)
    except SignedOut:
        await run_in_threadpool(sessions_of(request).drop, token)
        raise
    current = Viewer(principal, session, deps.Caller(principal, request.app.state.tenancy))
    request.state.viewer = current
    return current


async def admin_viewer(request: Request) -> Viewer:
    """A project admin or the server administrator: the API's own role check (``deps.admin``)."""
    current = await viewer(request)
    await deps.admin(current.caller)
    return current


async def server_admin_viewer(request: Request) -> Viewer:
    """The server administrator only: the API's own role check (``deps.server_admin``)."""
    current = await viewer(request)
    await deps.server_admin(current.caller)
    return current


def check_csrf(expected: str, form: Any) -> None:
    """Raises PermissionDenied unless the form carries the session's CSRF token."""
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied(
            "this form is out of date or did not come from this dashboard: reload the page and try again"
        )


async def form_of(request: Request, current: Viewer) -> dict[str, str]:
    """The submitted form of a signed-in page, after its CSRF check; text fields only."""
    form = await request.form()
    check_csrf(current.session.csrf, form)
    return {k: v for k, v in form.items() if isinstance(v, str)}
