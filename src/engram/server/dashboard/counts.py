"""Read-only figures the overview and namespace pages need, from public ``Memory`` methods.

Entries per namespace come from ``Memory.namespace_counts()``: one GROUP BY in
the store, exact for every namespace whatever its size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engram._time import utcnow
from engram.memory import Memory
from engram.server.models import Transaction


@dataclass(frozen=True, slots=True)
class NamespaceCount:
    namespace: str
    entries: int


def namespace_counts(memory: Memory) -> list[NamespaceCount]:
    """Every namespace with its live entries, by name."""
    return [NamespaceCount(ns, n) for ns, n in memory.namespace_counts().items()]


def exact_count(memory: Memory, namespace: str) -> int:
    """Live entries in ``namespace`` (0 when it holds none)."""
    return memory.namespace_counts().get(namespace, 0)


def largest_namespaces(memory: Memory, top: int = 8) -> list[NamespaceCount]:
    """The ``top`` namespaces by live entries, largest first (ties by name)."""
    return sorted(namespace_counts(memory), key=lambda c: (-c.entries, c.namespace))[:top]


def writes_per_day(log: list[Transaction], days: int = 30, *, today: date | None = None) -> list[tuple[date, int]]:
    """Successful writes per UTC day for the last ``days`` days, oldest first, zero days included."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    counts = Counter(t.at.date() for t in log if t.outcome == "ok" and t.at.date() >= first)
    return [(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)]


def since_days(days: int) -> datetime:
    """Midnight UTC at the start of the first of the last ``days`` days."""
    now = utcnow()
    first = now.date() - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=now.tzinfo)
