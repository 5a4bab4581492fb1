"""Refuse request bodies over ``max_request_bytes`` with 413, before or while they are read.

A declared ``Content-Length`` over the limit is refused before a byte of the
body is read; a body without one (chunked) is counted as it arrives and
refused as soon as the count passes the limit, so a client cannot make the
server buffer more than the limit either way.
"""

from __future__ import annotations

from typing import NamedTuple

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engram.server._errors import TrackedSend, error_response


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    An HTTPException, so FastAPI's body parsing passes it on unchanged and the
    app's handler answers 413 in the one error shape.
    """

    def __init__(self, cap: BodyCap):
        super().__init__(413, too_large_message(cap))


class BodyCap(NamedTuple):
    """A body limit in bytes and the setting that sets it (named in the 413's message)."""

    limit: int
    setting: str = "max_request_bytes"


def too_large_message(cap: BodyCap) -> str:
    return f"the request body is over {cap.limit} bytes, the limit (setting {cap.setting}); send less"


class BodyLimit:
    """ASGI middleware enforcing the request body limit on every HTTP route (REST and MCP)."""

    def __init__(self, app: ASGIApp, max_bytes: int, routes: dict[tuple[str, str], BodyCap] | None = None):
        self.app = app
        self.default = BodyCap(max_bytes)
        # (method, path) -> its own limit: blob uploads take the blob limit, not max_request_bytes.
        self.routes = routes or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.routes.get((scope.get("method", ""), scope.get("path", "")), self.default)
        declared = _content_length(scope)
        if declared is not None and declared > cap.limit:
            await _refuse(cap, scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap.limit:
                    raise BodyTooLarge(cap)
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except BodyTooLarge:
            if tracked.started:
                raise
            await _refuse(cap, scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server rejects a malformed length itself
    return None


async def _refuse(cap: BodyCap, scope: Scope, receive: Receive, send: Send) -> None:
    # Connection: close, since the unread rest of the body cannot be skipped cheaply.
    response = error_response(413, "ContentTooLarge", too_large_message(cap), headers={"Connection": "close"})
    await response(scope, receive, send)
