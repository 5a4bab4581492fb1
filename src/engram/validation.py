"""Argument checks shared by every front end; each failure names the field and the limit."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from engram.errors import ContentTooLarge, InvalidInput

MAX_NAME_CHARS = 256
MAX_LIMIT = 10_000
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600
# A filter is one AND of equalities; SQLite's expression tree overflows near 500.
MAX_FILTER_KEYS = 64
# Integers every backend compares exactly (SQLite's INTEGER is 64-bit).
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
# Lists and objects inside one another; json's C encoder recurses per level.
MAX_JSON_DEPTH = 100
# C0/C1 controls, DEL and lone surrogates (which no encoding can store).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def json_encoder(*, allow_nan: bool) -> Callable[[Any], str]:
    """A compact JSON encoder that keeps non-ASCII text, built once.

    ``json.dumps`` (and ``JSONEncoder.encode``) build a C encoder per call:
    ~3x the time of encoding small metadata with one built in advance. It
    skips the circular-reference check, so values must be acyclic:
    :func:`json_value` rejects a cycle as nesting too deep before encoding.
    """
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(ensure_ascii=False, allow_nan=allow_nan, separators=(",", ":")).encode
    # markers, default, string encoder, indent, key sep., item sep., sort_keys, skipkeys, allow_nan
    encode = c_make_encoder(None, _not_json, encode_basestring, None, ":", ",", False, False, allow_nan)

    def to_json(value: Any) -> str:
        chunks = encode(value, 0)
        return chunks[0] if len(chunks) == 1 else "".join(chunks)

    return to_json


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# One encoder for every check: json.dumps with options builds a new one per call.
_to_json = json_encoder(allow_nan=False)
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(\.[A-Za-z0-9_][A-Za-z0-9_-]{0,63}){0,7}$")


def name(field: str, value: Any) -> str:
    """A key or namespace: a non-empty string of at most 256 characters, no control characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidInput(f"{field} must not be empty")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidInput(f"{field} is {len(value)} characters; the limit is {MAX_NAME_CHARS}")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise InvalidInput(
            f"{field} contains control character {bad.group()!r} at position {bad.start()}; "
            "use printable characters only"
        )
    return value


def content(value: Any, max_bytes: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"content must be a string, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"content has an unpaired surrogate at position {exc.start}; it cannot be stored as UTF-8"
        ) from exc
    if size > max_bytes:
        raise ContentTooLarge(
            f"content is {size} bytes; the limit is {max_bytes} bytes (setting max_content_bytes)"
        )
    return value


_SCALARS = frozenset((str, int, float, bool, type(None)))
_STR = frozenset((str,))


def _json_depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (a scalar is 0); iterative, so any depth is safe."""
    if type(value) is dict and _SCALARS.issuperset(map(type, value.values())):
        return 1  # the usual flat metadata, checked without the walk (bulk writes check every item)
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_value(field: str, value: Any, max_bytes: int) -> str:
    """Check that ``value`` is plain JSON within the size and nesting limits; returns its text."""
    if _json_depth(value) > MAX_JSON_DEPTH:
        raise InvalidInput(f"{field} nests lists and objects deeper than {MAX_JSON_DEPTH} levels; flatten it")
    return _checked_json(field, value, max_bytes)


def _checked_json(field: str, value: Any, max_bytes: int) -> str:
    """The JSON text of ``value`` (nesting already checked), within ``max_bytes``."""
    try:
        text = _to_json(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be JSON (str, number, bool, null, list, dict): {exc}") from exc
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} has an unpaired surrogate; it cannot be stored as UTF-8") from exc
    if size > max_bytes:
        raise ContentTooLarge(f"{field} is {size} bytes as JSON; the limit is {max_bytes} bytes")
    return text


def metadata(value: Any, max_bytes: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"metadata must be a JSON object (dict), not {type(value).__name__}")
    if _STR.issuperset(map(type, value)) and _SCALARS.issuperset(map(type, value.values())):
        _checked_json("metadata", value, max_bytes)  # flat, string keys: nothing to walk
        return value
    if not _STR.issuperset(map(type, value)):  # the loop only when some key is not exactly a str
        for key in value:
            if not isinstance(key, str):
                raise InvalidInput(f"metadata keys must be strings, got {key!r}")
    json_value("metadata", value, max_bytes)
    return value


def metadata_filter(value: Any) -> dict[str, Any]:
    """``{"key": scalar}`` with keys like ``topic`` or ``user.name`` (dots go into nested objects).

    Checked once here for every backend: at most :data:`MAX_FILTER_KEYS` keys,
    integers within 64 bits, finite floats, strings that UTF-8 can encode and
    that hold no NUL (PostgreSQL text cannot).

    Raises:
        InvalidInput: naming the key and the limit it breaks.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"metadata filter must be a dict, not {type(value).__name__}")
    if len(value) > MAX_FILTER_KEYS:
        raise InvalidInput(f"metadata filter has {len(value)} keys; the limit is {MAX_FILTER_KEYS}")
    for key, wanted in value.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise InvalidInput(
                f"metadata filter key {key!r} is not allowed: use letters, digits, '_' and '-' "
                "(up to 64), with '.' between nested keys"
            )
        if wanted is not None and not isinstance(wanted, (str, int, float, bool)):
            raise InvalidInput(
                f"metadata filter value for {key!r} must be a string, number, bool or null, "
                f"not {type(wanted).__name__}"
            )
        if isinstance(wanted, float) and not math.isfinite(wanted):
            raise InvalidInput(f"metadata filter value for {key!r} must be a finite number")
        if isinstance(wanted, int) and not isinstance(wanted, bool) and not MIN_INT <= wanted <= MAX_INT:
            raise InvalidInput(
                f"metadata filter value for {key!r} is outside the 64-bit integer range {MIN_INT}..{MAX_INT}"
            )
        if isinstance(wanted, str):
            _filter_text(key, wanted)
    return value


def _filter_text(key: str, wanted: str) -> None:
    try:
        wanted.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"metadata filter value for {key!r} has an unpaired surrogate at position {exc.start}; "
            "it cannot be encoded as UTF-8"
        ) from None
    if "\x00" in wanted:
        raise InvalidInput(f"metadata filter value for {key!r} contains a NUL character; remove it")


def json_text(field: str, text: str) -> Any:
    """Parse JSON given as text (a query parameter, a CLI option) into a value within the nesting limit.

    Raises:
        InvalidInput: the text is not JSON, or nests deeper than :data:`MAX_JSON_DEPTH` levels.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        depth_exceeded = True
    except ValueError as exc:  # JSONDecodeError, and lone surrogates in bytes
        raise InvalidInput(f"{field} is not valid JSON: {exc}") from None
    else:
        depth_exceeded = _json_depth(value) > MAX_JSON_DEPTH
    if depth_exceeded:
        raise InvalidInput(f"{field} nests lists and objects deeper than {MAX_JSON_DEPTH} levels; flatten it")
    return value


def ttl(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"ttl must be a number of seconds, not {value!r}")
    if value <= 0 or value > MAX_TTL_SECONDS:
        raise InvalidInput(f"ttl must be between 0 and {MAX_TTL_SECONDS} seconds (100 years), got {value}")
    return float(value)


def limit(value: Any, field: str = "limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"{field} must be a whole number from 1 to {MAX_LIMIT}, got {value!r}")
    return value


def offset(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"offset must be a whole number >= 0, got {value!r}")
    return value


def choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def identifier(field: str, value: Any) -> str:
    """A record id (session, task): a non-empty string without control characters."""
    return name(field, value)
