"""Sign-in and sign-out: an API key, posted once, is exchanged for a session cookie."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from engram.errors import AuthError, RateLimited
from engram.server.dashboard.sessions import COOKIE
from engram.server.dashboard.web import PageRoute, Viewer, check_csrf, redirect, render, sessions_of, viewer
from engram.server.deps import authenticate, request_client

router = APIRouter(route_class=PageRoute, include_in_schema=False)
# Sign-in has no session yet: its CSRF token is a double-submit cookie, so no other site can sign a browser in.
LOGIN_COOKIE = "engram_signin"


def _safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only (never //host or a scheme)."""
    # Browsers drop tabs and newlines from URLs ("/\t/evil" is "//evil"): no whitespace or controls at all.
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7f for ch in target)):
        return "/"
    return target


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status_code=status, login_csrf=token, error=error,
                      next=_safe_next(request.query_params.get("next")))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.url.scheme == "https")
    return response


@router.get("/login", name="dashboard.login")
def login_form(request: Request) -> Response:
    """The sign-in page (a signed-in browser goes to the overview)."""
    if sessions_of(request).get(request.cookies.get(COOKIE)) is not None:
        return redirect("/")
    return _login_page(request)


@router.post("/login", name="dashboard.signin")
async def sign_in(request: Request) -> Response:
    """Check the key (counted against the client like the API's failures); on success set the session cookie."""
    form = await request.form()
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected:
        return _login_page(request, 400, "Your browser did not keep the sign-in form's cookie: allow cookies for "
                                         "this site and try again.")
    check_csrf(expected, form)
    key = form.get("api_key")
    try:
        principal = await run_in_threadpool(  # database calls: never on the event loop
            authenticate, request.app.state.tenancy, request.app.state.limiter, request_client(request),
            key.strip() if isinstance(key, str) else None,
        )
    except RateLimited as exc:
        return _login_page(request, 429, exc.message)
    except AuthError as exc:
        return _login_page(request, 401, f"Sign-in failed: {exc.message}.")
    token, _ = await run_in_threadpool(sessions_of(request).create, principal.key_id)
    target = form.get("next")
    response = redirect(_safe_next(target if isinstance(target, str) else None))
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https",
                        max_age=int(sessions_of(request).lifetime))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout", name="dashboard.signout")
async def sign_out(request: Request, current: Annotated[Viewer, Depends(viewer)]) -> Response:
    """End this browser's session."""
    check_csrf(current.session.csrf, await request.form())
    await run_in_threadpool(sessions_of(request).drop, request.cookies.get(COOKIE))
    response = redirect("/login", notice="signed-out")
    response.delete_cookie(COOKIE, path="/")
    return response
