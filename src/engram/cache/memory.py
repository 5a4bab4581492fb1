"""The in-process cache backend: a least-recently-used map with per-key expiry."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from engram.cache.base import CacheBackend


class InMemoryCacheBackend(CacheBackend):
    """At most ``max_entries`` values; the least recently used goes first, expired ones as they are met.

    Visible to this process only (``shared`` is False). One lock guards the
    map, so any number of threads may use it.
    """

    shared = False
    name = "in-memory"

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[str, float | None]] = (
            OrderedDict()
        )  # key -> (value, deadline)
        # raise_to's numbers are never evicted: losing one would let the search cache outlive an expiry.
        self._pinned: dict[str, float] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"in-memory (max {self.max_entries} entries)"

    def _live(self, key: str, now: float) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[0]

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        now = time.monotonic()
        with self._lock:
            return [self._live(k, now) or self._pinned_text(k) for k in keys]

    def _pinned_text(self, key: str) -> str | None:
        value = self._pinned.get(key)
        return None if value is None else repr(value)

    def set_many(self, items: Mapping[str, str], ttl: float | None) -> None:
        deadline = None if ttl is None else time.monotonic() + ttl
        with self._lock:
            data = self._data
            for key, value in items.items():
                data[key] = (value, deadline)
                data.move_to_end(key)
            while len(data) > self.max_entries:
                data.popitem(last=False)

    def delete_many(self, keys: Sequence[str]) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(
                self._live(k, now) is not None and self._data.pop(k, None) is not None
                for k in keys
            )

    def _matching(self, prefix: str, now: float) -> list[str]:
        expired = [k for k, (_, d) in self._data.items() if d is not None and d <= now]
        for key in expired:
            del self._data[key]
        return [k for k in self._data if k.startswith(prefix)]

    def clear(self, prefix: str) -> int:
        with self._lock:
            keys = self._matching(prefix, time.monotonic())
            for key in keys:
                del self._data[key]
            return len(keys)

    def count(self, prefix: str) -> int:
        with self._lock:
            return len(self._matching(prefix, time.monotonic()))

    def raise_to(self, key: str, value: float) -> None:
        with self._lock:
            self._pinned[key] = max(float(value), self._pinned.get(key, float("-inf")))
