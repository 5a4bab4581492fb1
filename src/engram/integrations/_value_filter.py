"""LangGraph store filters (``{"field": value}``, ``{"field": {"$gt": 3}}``) split into what
engram's metadata filter answers in the store and what is checked here, in Python.

engram's metadata filter is an AND of equalities on scalars; a LangGraph filter
may also compare (``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``) and match nested
objects and lists. Equalities on plain top-level fields go to the store (under
``prefix``); the rest is matched by :func:`matches` with the JSON semantics
LangGraph's stores use.
"""

from __future__ import annotations

import re
from typing import Any

from engram.errors import InvalidInput

_PLAIN_FIELD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
_SCALAR = (str, int, float, bool)
_COMPARISONS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: _number(a) is not None and _number(a) > _number(b),
    "$gte": lambda a, b: _number(a) is not None and _number(a) >= _number(b),
    "$lt": lambda a, b: _number(a) is not None and _number(a) < _number(b),
    "$lte": lambda a, b: _number(a) is not None and _number(a) <= _number(b),
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def split(
    filter: dict[str, Any] | None, prefix: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(in_store, in_python)``: equalities engram can filter by, under ``prefix.``, and the rest.

    Raises:
        InvalidInput: an operator LangGraph does not define, or a non-numeric comparison.
    """
    in_store: dict[str, Any] = {}
    in_python: dict[str, Any] = {}
    for field, wanted in (filter or {}).items():
        _check(field, wanted)
        if isinstance(wanted, dict) and set(wanted) == {"$eq"}:
            wanted = wanted["$eq"]
        if (
            isinstance(field, str)
            and _PLAIN_FIELD.match(field)
            and type(wanted) in _SCALAR
        ):
            in_store[f"{prefix}.{field}"] = wanted
        else:
            in_python[field] = wanted
    return in_store, in_python


def _check(field: Any, wanted: Any) -> None:
    if not isinstance(field, str):
        raise InvalidInput(
            f"filter field names must be strings, not {type(field).__name__}"
        )
    if isinstance(wanted, dict) and any(
        isinstance(k, str) and k.startswith("$") for k in wanted
    ):
        for op, operand in wanted.items():
            if op not in _COMPARISONS:
                raise InvalidInput(
                    f"filter on {field!r} uses unknown operator {op!r}; use one of {', '.join(_COMPARISONS)}"
                )
            if op not in ("$eq", "$ne") and _number(operand) is None:
                raise InvalidInput(
                    f"filter {op} on {field!r} compares numbers, not {operand!r}"
                )


def matches(value: dict[str, Any], in_python: dict[str, Any]) -> bool:
    """Whether an item's value satisfies the filter conditions left to Python."""
    return all(
        _compare(value.get(field), wanted) for field, wanted in in_python.items()
    )


def _compare(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        if any(isinstance(k, str) and k.startswith("$") for k in wanted):
            return all(
                _COMPARISONS[op](actual, operand) for op, operand in wanted.items()
            )
        return isinstance(actual, dict) and all(
            _compare(actual.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(wanted)
            and all(_compare(a, w) for a, w in zip(actual, wanted))
        )
    return actual == wanted
