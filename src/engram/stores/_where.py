"""WHERE clauses of optional filters, shared by the SQL builders of SQLite and PostgreSQL (pure, no I/O).

A listing query's filters are mostly "this condition, when its value is
given": these helpers keep the conditions whose value is not None, in order,
with their bound values, so each builder lists its conditions once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["given", "given_named", "where"]


def given(conditions: Iterable[tuple[str, Any]]) -> tuple[list[str], list[Any]]:
    """The ``(clause, value)`` pairs whose value is not None: their clauses, and their values as ``?`` parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in conditions:
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return clauses, params


def given_named(conditions: Iterable[tuple[str, str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """The ``(name, clause, value)`` triples whose value is not None: their clauses, and ``%(name)s`` parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for name, clause, value in conditions:
        if value is not None:
            clauses.append(clause)
            params[name] = value
    return clauses, params


def where(clauses: Sequence[str]) -> str:
    """`` WHERE a AND b`` of the clauses, or nothing when there are none."""
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
