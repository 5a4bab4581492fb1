"""Read-only figures the overview needs that the facade has no single call for.

Built only on public ``Memory`` and ``ControlPlane`` methods. The facade has no
per-namespace count yet (a ``Memory.count(namespace)`` backed by one ``COUNT``
in each store would replace this module's probing), so ``count_entries`` finds
the size of a namespace by probing ``Memory.list(limit=1, offset=n)``: never
more than one entry loaded, but a probe costs O(n) on SQLite. Listings therefore
count exactly up to ``EXACT_UP_TO`` entries, and the one namespace above it (the
usual shape: one big namespace) gets its exact count as the store's total minus
the others.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engram._time import utcnow
from engram.memory import Memory
from engram.server.models import Transaction

EXACT_UP_TO = 2_000


@dataclass(frozen=True, slots=True)
class NamespaceCount:
    namespace: str
    entries: int
    exact: bool  # False: at least ``entries``


def _exists(memory: Memory, namespace: str, offset: int) -> bool:
    return bool(memory.list(namespace=namespace, limit=1, offset=offset))


def count_entries(memory: Memory, namespace: str, *, cap: int | None = None) -> int:
    """Live entries in ``namespace`` (at most ``cap``): a galloping then binary search over offsets."""
    if not _exists(memory, namespace, 0):
        return 0
    low, high = 0, 1  # an entry exists at offset low, none at offset high (once known)
    while (cap is None or high < cap) and _exists(memory, namespace, high):
        low, high = high, high * 2
    if cap is not None and high >= cap:
        if _exists(memory, namespace, cap - 1):
            return cap
        high = cap - 1
    while high - low > 1:
        middle = (low + high) // 2
        if _exists(memory, namespace, middle):
            low = middle
        else:
            high = middle
    return high


def namespace_counts(memory: Memory, *, total: int | None = None) -> list[NamespaceCount]:
    """Every namespace with its live entries, by name; exact unless two or more exceed ``EXACT_UP_TO``.

    Args:
        total: the store's live entries, when the caller already has ``Memory.stats()``.
    """
    counted = {ns: count_entries(memory, ns, cap=EXACT_UP_TO) for ns in memory.namespaces()}
    over = [ns for ns, n in counted.items() if n >= EXACT_UP_TO]
    if len(over) == 1:
        rest = sum(n for ns, n in counted.items() if ns != over[0])
        total = memory.stats().entries if total is None else total
        counted[over[0]] = max(total - rest, EXACT_UP_TO)
        over = []
    return [NamespaceCount(ns, n, ns not in over) for ns, n in counted.items()]


def exact_count(memory: Memory, namespace: str) -> int:
    """Live entries in ``namespace``, exactly (for a confirmation or reading a listing from its end)."""
    n = count_entries(memory, namespace, cap=EXACT_UP_TO)
    if n < EXACT_UP_TO:
        return n
    for found in namespace_counts(memory):
        if found.namespace == namespace and found.exact:
            return found.entries
    return count_entries(memory, namespace)


def largest_namespaces(memory: Memory, top: int = 8, *, total: int | None = None) -> list[NamespaceCount]:
    """The ``top`` namespaces by live entries, largest first (ties by name)."""
    return sorted(namespace_counts(memory, total=total), key=lambda c: (-c.entries, c.namespace))[:top]


def writes_per_day(log: list[Transaction], days: int = 30, *, today: date | None = None) -> list[tuple[date, int]]:
    """Successful writes per UTC day for the last ``days`` days, oldest first, zero days included."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    counts = Counter(t.at.date() for t in log if t.outcome == "ok" and t.at.date() >= first)
    return [(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)]


def since_days(days: int) -> datetime:
    """Midnight UTC at the start of the first of the last ``days`` days."""
    first = utcnow().date() - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=utcnow().tzinfo)
