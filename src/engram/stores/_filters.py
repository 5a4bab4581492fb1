"""Record filters evaluated in Python, for backends without a query engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engram.models import Entry
from engram.stores.base import MetadataFilter

_MISSING = object()


def _lookup(metadata: dict[str, Any], path: str) -> Any:
    value: Any = metadata
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _same(actual: Any, wanted: Any) -> bool:
    """JSON equality that keeps booleans apart from numbers, as the SQL backends do."""
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual == wanted
    if isinstance(wanted, (int, float)):
        return isinstance(actual, (int, float)) and actual == wanted
    return type(actual) is type(wanted) and actual == wanted


def metadata_matches(metadata: dict[str, Any], wanted: MetadataFilter) -> bool:
    for path, value in wanted.items():
        actual = _lookup(metadata, path)
        if actual is _MISSING or not _same(actual, value):
            return False
    return True


def is_live(entry: Entry, now: datetime) -> bool:
    return entry.expires_at is None or entry.expires_at > now
