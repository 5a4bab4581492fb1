"""LangGraph namespace tuples <-> engram namespace strings, reversibly.

A tuple ``("users", "u/1")`` becomes ``"users/u%2F1"``: labels joined by ``/``,
each with ``%`` and ``/`` percent-escaped, so any label survives the trip and
two different tuples never meet in one engram namespace. Labels that cannot be
stored (not a string, empty, control characters, too long) are refused with a
message saying what to change, before anything is written.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from engram.errors import InvalidInput
from engram.validation import MAX_NAME_CHARS

SEPARATOR = "/"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# LangGraph reserves the first label "langgraph"; the checkpointer keeps its threads there.
RESERVED = "langgraph"


def escape(label: str) -> str:
    """One label with ``%`` and ``/`` escaped (``%25``, ``%2F``)."""
    return label.replace("%", "%25").replace("/", "%2F")


def unescape(label: str) -> str:
    return label.replace("%2F", "/").replace("%2f", "/").replace("%25", "%")


def check_label(label: Any, where: str = "namespace label") -> str:
    """A label that can be stored, or InvalidInput saying why not."""
    if not isinstance(label, str):
        raise InvalidInput(
            f"{where} must be a string, not {type(label).__name__} ({label!r})"
        )
    if not label:
        raise InvalidInput(f"{where} must not be empty")
    bad = _CONTROL.search(label)
    if bad:
        raise InvalidInput(
            f"{where} {label!r} contains control character {bad.group()!r}; use printable characters"
        )
    return label


def encode(namespace: Any) -> str:
    """The engram namespace of a LangGraph namespace tuple.

    Raises:
        InvalidInput: not a non-empty tuple of storable labels, or over 256 characters encoded.
    """
    try:
        return _encode_cached(namespace)
    except TypeError:  # unhashable: not a tuple of strings
        return _encode(namespace)


def _encode(namespace: Any) -> str:
    if not isinstance(namespace, tuple) or not namespace:
        raise InvalidInput(
            f"namespace must be a non-empty tuple of strings, not {namespace!r}"
        )
    encoded = SEPARATOR.join(escape(check_label(label)) for label in namespace)
    if len(encoded) > MAX_NAME_CHARS:
        raise InvalidInput(
            f"namespace {namespace!r} is {len(encoded)} characters encoded; the limit is {MAX_NAME_CHARS}: "
            "use fewer or shorter labels"
        )
    return encoded


_encode_cached = functools.lru_cache(maxsize=4096)(
    _encode
)  # every operation encodes its namespace


def decode(namespace: str) -> tuple[str, ...]:
    """The LangGraph namespace tuple of an engram namespace (the inverse of :func:`encode`)."""
    return tuple(unescape(label) for label in namespace.split(SEPARATOR))
