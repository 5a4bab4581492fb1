"""Failed-authentication limiting, per client address and per presented key, in process memory.

Only failures are counted and only failures are refused: the caller authenticates
first, so a valid key is never answered 429, whatever others sent from its address.
Failures are counted twice, by client address (one guesser, many keys) and by the
visible prefix of the key presented (many addresses guessing one key).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Protocol

from engram.errors import RateLimited


class Limiter(Protocol):
    """What the server asks of a failed-authentication limiter (this module's, or a shared one)."""

    def failed(self, client: str, key_prefix: str | None = None) -> None: ...


def refusal(kind: str, subject: str, wait: float) -> RateLimited:
    """The 429 for ``subject`` (of ``kind`` client or key), which may try again in ``wait`` seconds."""
    retry = max(1, int(wait + 0.999))
    what = "from this client" if kind == "client" else f"with key {subject}"
    return RateLimited(f"too many failed authentications {what}; retry in {retry} seconds", retry_after=retry)


class FailureLimiter:
    """At most ``max_failures`` failed authentications per subject within ``window`` seconds.

    Past that, further failures of that subject are answered 429 (instead of 401)
    until its oldest counted failure leaves the window. Each table keeps at most
    ``max_tracked`` subjects, dropping the one that failed least recently, so a
    flood of distinct addresses or prefixes cannot grow memory without bound.
    """

    def __init__(self, max_failures: int = 20, window: float = 60.0, clock=time.monotonic,
                 max_tracked: int = 100_000):
        self.max_failures = max_failures
        self.window = window
        self.max_tracked = max_tracked
        self._clock = clock
        # Separate tables: a flood of invented key prefixes cannot evict the count of an address.
        self._tables: dict[str, OrderedDict[str, deque[float]]] = {"client": OrderedDict(), "key": OrderedDict()}
        self._lock = threading.Lock()

    def _recent(self, table: OrderedDict[str, deque[float]], subject: str, now: float) -> deque[float] | None:
        failures = table.get(subject)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del table[subject]
            return None
        return failures

    def failed(self, client: str, key_prefix: str | None = None) -> None:
        """Count one failed authentication of ``client`` (and of ``key_prefix``, when the key shows one).

        Raises:
            RateLimited: the client or the key prefix is already over the limit (then nothing is
                counted, so a guesser gets ``max_failures`` tries per window, not fewer).
        """
        subjects = [("client", client)] + ([("key", key_prefix)] if key_prefix else [])
        now = self._clock()
        with self._lock:
            for kind, subject in subjects:
                failures = self._recent(self._tables[kind], subject, now)
                if failures is not None and len(failures) >= self.max_failures:
                    raise refusal(kind, subject, failures[0] + self.window - now)
            for kind, subject in subjects:
                table = self._tables[kind]
                failures = table.get(subject)
                if failures is None:
                    while len(table) >= self.max_tracked:
                        table.popitem(last=False)
                    failures = table[subject] = deque(maxlen=self.max_failures)
                else:
                    table.move_to_end(subject)
                failures.append(now)

    def tracked(self) -> int:
        """How many subjects are being counted (for tests of the memory bound)."""
        with self._lock:
            return sum(len(t) for t in self._tables.values())
