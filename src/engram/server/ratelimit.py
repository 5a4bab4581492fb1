"""Failed-authentication rate limiting, per client address, in process memory."""

from __future__ import annotations

import threading
import time
from collections import deque

from engram.errors import RateLimited


class FailureLimiter:
    """At most ``max_failures`` failed authentications per client within ``window`` seconds.

    Past that the client is refused (429) until its oldest failure leaves the
    window, whatever key it sends: guessing keys gets no faster with a good one
    mixed in.
    """

    def __init__(self, max_failures: int = 20, window: float = 60.0, clock=time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def check(self, client: str) -> None:
        """Raise :class:`RateLimited` when ``client`` is over the limit."""
        now = self._clock()
        with self._lock:
            failures = self._recent(client, now)
            if failures is not None and len(failures) >= self.max_failures:
                retry = max(1, int(failures[0] + self.window - now + 0.999))
                raise RateLimited(
                    f"too many failed authentications from this client; retry in {retry} seconds", retry_after=retry
                )

    def fail(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > 100_000:  # bound memory under a flood of distinct addresses
                self._failures.clear()
            self._failures.setdefault(client, deque()).append(now)
