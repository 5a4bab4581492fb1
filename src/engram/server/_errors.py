"""One JSON error shape for every error the REST API answers with.

``{"error": {"type": "NotFound", "status": 404, "message": "...", "details": null}}``.
engram errors map by their ``status`` attribute; request validation is an
``InvalidInput`` (422) with ``details`` (locations and messages, never the
rejected values, which may be secrets); routing errors keep their HTTP status;
anything unexpected is a 500 whose message says nothing of its cause.

Server errors are logged on a worker thread, never on the event loop:
formatting a traceback and writing it to a slow sink (a terminal, a pipe)
takes milliseconds to seconds, and every other request would wait meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engram.errors import AuthError, EngramError, RateLimited
from engram.validation import MAX_JSON_DEPTH

log = logging.getLogger("engram.server")
MAX_PENDING_LOGS = 256  # a burst of failures beyond this is counted, not queued (each holds a traceback)

_HTTP_TYPES = {
    400: "InvalidInput", 401: "AuthError", 403: "PermissionDenied", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 413: "ContentTooLarge", 415: "UnsupportedMediaType",
    422: "InvalidInput", 429: "RateLimited",
}


def error_response(status: int, type_: str, message: str, details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"type": type_, "status": status, "message": message, "details": details}}
    # ensure_ascii: an echoed name may hold a lone surrogate, which UTF-8 cannot encode.
    return Response(
        json.dumps(body, ensure_ascii=True), status_code=status, media_type="application/json", headers=headers
    )


def engram_error_response(exc: EngramError) -> Response:
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    elif type(exc) is AuthError:
        headers = {"WWW-Authenticate": 'Bearer realm="engram"'}
    return error_response(exc.status, type(exc).__name__, exc.message, headers=headers)


def _detail(err: dict[str, Any]) -> dict[str, Any]:
    return {"loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
            "type": str(err.get("type", ""))}


class _ErrorLog:
    """Writes server-error records on one worker thread, in order, without blocking the caller."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._dropped = 0

    def error(self, msg: str, *args: Any, exc_info: BaseException | None = None) -> None:
        with self._lock:
            if self._pending >= MAX_PENDING_LOGS:
                self._dropped += 1
                return
            self._pending += 1
            dropped, self._dropped = self._dropped, 0
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engram-error-log")
            pool = self._pool
        pool.submit(self._write, msg, args, exc_info, dropped)

    def _write(self, msg: str, args: tuple[Any, ...], exc_info: BaseException | None, dropped: int) -> None:
        try:
            if dropped:
                log.error("%d server errors were not logged: too many at once", dropped)
            log.error(msg, *args, exc_info=exc_info)
        finally:
            with self._lock:
                self._pending -= 1


error_log = _ErrorLog()


class TrackedSend:
    """An ASGI ``send`` that notes whether the response has started: after that, no error response
    can replace it."""

    def __init__(self, send: Send):
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class CatchUnexpected:
    """ASGI middleware: an exception no handler took becomes the 500 error shape.

    Unlike Starlette's own last-resort handler it does not re-raise, so the
    ASGI server does not log the traceback again on the event loop.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # CancelledError is a BaseException: it passes through
            error_log.error("%s %s raised %s", scope.get("method"), scope.get("path"), type(exc).__name__,
                            exc_info=exc)
            if tracked.started:
                raise  # half a response is out; only the server can end it
            await error_response(500, "InternalError", "internal server error")(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(CatchUnexpected)

    @app.exception_handler(EngramError)
    async def _engram(request: Request, exc: EngramError) -> Response:
        if exc.status >= 500:
            error_log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__,
                            exc.message)
        return engram_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [_detail(e) for e in exc.errors()]
        summary = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details[:5])
        return error_response(422, "InvalidInput", f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            message = (f"the JSON body nests too deeply to parse; metadata and other values may nest "
                       f"at most {MAX_JSON_DEPTH} levels")
        elif exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}"
        elif exc.status_code == 405:
            # Starlette names the methods of the first matching route only; a path
            # served by several routes (GET and POST /memories) allows them all.
            allowed = allowed_methods(request.app, request.url.path)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}"
        return error_response(exc.status_code, _HTTP_TYPES.get(exc.status_code, "HTTPError"), message, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Only what fails outside CatchUnexpected (in other middleware) gets here.
        error_log.error("%s %s raised %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return error_response(500, "InternalError", "internal server error")


def _flat(routes: list[Any]) -> list[Any]:
    flat = []
    for route in routes:
        nested = getattr(route, "original_router", None)  # newer FastAPI keeps included routers nested
        flat.extend(_flat(nested.routes) if nested is not None else [route])
    return flat


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods = {
        m
        for route in _flat(app.routes)
        if getattr(route, "path_regex", None) is not None and route.path_regex.match(path)
        for m in (getattr(route, "methods", None) or ())
    }
    return sorted(methods)
