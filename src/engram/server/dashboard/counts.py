"""Read-only figures the overview needs that the facade has no single call for.

Built only on public ``Memory`` and ``ControlPlane`` methods. ``count_entries``
stands in for a per-namespace count in the facade (a ``Memory.count`` would let
each store answer with one ``COUNT``): it probes ``Memory.list(limit=1,
offset=n)``, which never loads more than one entry at a time.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from engram._time import utcnow
from engram.memory import Memory
from engram.server.models import Transaction


def _exists(memory: Memory, namespace: str, offset: int) -> bool:
    return bool(memory.list(namespace=namespace, limit=1, offset=offset))


def count_entries(memory: Memory, namespace: str) -> int:
    """Live entries in ``namespace``: a galloping then binary search over offsets (O(log n) probes)."""
    if not _exists(memory, namespace, 0):
        return 0
    low, high = 0, 1  # an entry exists at offset low; find the first offset without one
    while _exists(memory, namespace, high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if _exists(memory, namespace, middle):
            low = middle
        else:
            high = middle
    return high


def largest_namespaces(memory: Memory, top: int = 8, *, namespaces: list[str] | None = None) -> list[tuple[str, int]]:
    """The ``top`` namespaces by live entries, largest first (ties by name)."""
    counted = [(ns, count_entries(memory, ns)) for ns in (memory.namespaces() if namespaces is None else namespaces)]
    counted.sort(key=lambda pair: (-pair[1], pair[0]))
    return counted[:top]


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
