"""Exact path parameters: split the raw path into segments first, then decode each one.

ASGI servers hand routing a path already percent-decoded, so ``/memories/a%2Fb/k``
reads as ``/memories/a/b/k`` and names that hold ``/`` cannot be told apart. Routes
built by :class:`ExactPathRoute` take their parameters from the request's
``raw_path`` instead: a ``str`` or ``segment`` parameter is one raw segment, a
``path`` parameter (always last) the rest of the raw path, and each is decoded
after splitting. So a ``/`` inside a name is sent as ``%2F`` (a raw ``/`` after the
namespace belongs to the key, as before), ``%`` as ``%25``, and a name that is
exactly ``.`` or ``..`` as ``%2E`` / ``%2E%2E`` (clients drop dot segments).

Routing still runs on the decoded path, so a parameter that may hold an encoded
``/`` is declared ``{name:segment}``: it matches loosely there and exactly here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from engram.errors import NotFound

PATH_RULE = (
    "Each name is one percent-encoded path segment: `/` in a name is `%2F`, `%` is `%25`, "
    "and a name that is exactly `.` or `..` is `%2E` or `%2E%2E`."
)


class SegmentConvertor(Convertor[str]):
    """``{name:segment}``: one segment of the raw path, which may hold ``%2F`` (so loose on the decoded path)."""

    # Any character, newlines included: a decoded %0A must still reach the exact match (and
    # then the names' validation), not fall through to "no route".
    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("segment", SegmentConvertor())

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")


def raw_pattern(path: str) -> re.Pattern[str]:
    """The route ``path`` as a regex over the raw (still encoded) path, anchored at its end."""
    pattern, end = "", 0
    for m in _PARAM.finditer(path):
        pattern += re.escape(path[end : m.start()])
        kind = m.group(2) or "str"
        pattern += f"(?P<{m.group(1)}>{'.+' if kind == 'path' else '[^/]+'})"
        end = m.end()
    return re.compile(pattern + re.escape(path[end:]) + "$")


def _decode(raw: str) -> str:
    # Percent-escapes are UTF-8 bytes; undecodable ones become lone surrogates, which
    # the names' validation rejects with a message instead of a 500.
    return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8", "surrogateescape")


def exact_params(pattern: re.Pattern[str], scope: dict[str, Any]) -> dict[str, str] | None:
    """The path parameters read from ``scope["raw_path"]``; None when the raw path does not fit the route."""
    raw = scope["raw_path"].split(b"?", 1)[0].decode("latin-1")
    match = pattern.search(raw)
    if match is None:
        return None
    return {name: _decode(value) for name, value in match.groupdict().items()}


class ExactPathRoute(APIRoute):
    """An APIRoute whose path parameters are the raw path's segments, each decoded after splitting."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        pattern = raw_pattern(self.path)

        async def exact(request: Request) -> Response:
            if "raw_path" in request.scope and request.scope.get("path_params"):
                params = exact_params(pattern, request.scope)
                if params is None:
                    raise NotFound(f"no route {request.url.path}: {PATH_RULE}")
                request.scope["path_params"] = {**request.scope["path_params"], **params}
            return await handler(request)

        return exact
