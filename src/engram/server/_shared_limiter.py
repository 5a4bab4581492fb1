"""Failed-authentication limiting shared by every server process: counts in PostgreSQL or Redis.

The rules are :class:`~engram.server.ratelimit.FailureLimiter`'s (only failures
counted, per client address and per visible key prefix, ``max_failures`` per
``window`` seconds); the counts live where every server sees them, so a
guesser spreading tries over N servers gets ``max_failures`` in all, not N
times that. Times are wall-clock seconds, which servers on different machines
share (monotonic clocks are per machine).

Where (``auth_failures_url``, see :func:`limiter_for`): ``redis://...`` counts
in Redis (a sorted set per subject, checked and added in one Lua script);
unset, a server on PostgreSQL counts in its control schema; otherwise, and
with ``memory://``, each process counts its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from engram.errors import ConfigError
from engram.server.ratelimit import FailureLimiter, Limiter, refusal

if TYPE_CHECKING:
    from engram.config import Settings

# Forget the failures of subjects that stopped failing at most this often (seconds).
_PRUNE_EVERY = 60.0


@runtime_checkable
class FailureCounts(Protocol):
    """Where failures are counted: one atomic check-and-count for several subjects."""

    def count_auth_failure(
        self, subjects: Sequence[str], *, now: float, window: float, limit: int
    ) -> tuple[int, float] | None:
        """Count a failure of each subject unless one has ``limit`` within ``window``: then the index of
        the first such subject and the time of its oldest counted failure."""

    def prune_auth_failures(self, *, before: float) -> int: ...


class SharedFailureLimiter:
    """:class:`FailureLimiter`'s interface over counts every server shares."""

    def __init__(self, counts: FailureCounts, max_failures: int = 20, window: float = 60.0,
                 clock: Callable[[], float] = time.time, *, close: Callable[[], None] | None = None):
        self.counts = counts
        self._close = close  # what closes counts the limiter owns (a Redis client; not the control store)
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._pruned_at = 0.0
        self._lock = threading.Lock()

    def failed(self, client: str, key_prefix: str | None = None) -> None:
        """Count one failed authentication of ``client`` (and ``key_prefix``) for every server.

        Raises:
            RateLimited: the client or the key prefix is already over the limit (nothing is counted).
        """
        subjects = [f"client:{client}"] + ([f"key:{key_prefix}"] if key_prefix else [])
        now = self._clock()
        over = self.counts.count_auth_failure(subjects, now=now, window=self.window, limit=self.max_failures)
        self._prune(now)
        if over is not None:
            index, oldest = over
            kind, _, subject = subjects[index].partition(":")
            raise refusal(kind, subject, oldest + self.window - now)

    def _prune(self, now: float) -> None:
        with self._lock:
            if now - self._pruned_at < _PRUNE_EVERY:
                return
            self._pruned_at = now
        self.counts.prune_auth_failures(before=now - self.window)

    def tracked(self) -> int:
        return 0  # nothing held in this process

    def close(self) -> None:
        if self._close is not None:
            self._close()


# Per subject: drop failures out of the window; if any subject is at the limit, return the
# index (1-based) and oldest failure of the first such one; else add one failure to each and
# expire idle sets.
_COUNT_LUA = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    return {i, redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[4] .. ':' .. i)
  redis.call('EXPIRE', key, math.ceil(window) + 1)
end
return false
"""


class RedisFailureCounts:
    """Failure counts in Redis: ``<prefix>:auth-failures:<subject>``, a sorted set of times, expiring when idle."""

    def __init__(self, url: str):
        import redis

        from engram.stores.redis import parse_redis_url

        redis_url, prefix, _ = parse_redis_url(url)
        parts = urlsplit(redis_url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
        self._client: Any = redis.Redis.from_url(redis_url)
        self._prefix = f"{prefix}:auth-failures:"
        self._script = self._client.register_script(_COUNT_LUA)
        self._unique = 0
        self._lock = threading.Lock()

    def count_auth_failure(
        self, subjects: Sequence[str], *, now: float, window: float, limit: int
    ) -> tuple[int, float] | None:
        from engram.stores._driver_errors import translating
        from engram.stores.redis.errors import HOW_TO_START, REDIS_ERRORS

        with self._lock:
            self._unique += 1
            member = f"{now!r}:{id(self)}:{self._unique}"  # distinct members for failures in the same instant
        with translating(REDIS_ERRORS, "counting a failed authentication", where=self._where,
                         how_to_start=HOW_TO_START):
            over = self._script(keys=[self._prefix + s for s in subjects], args=[now, window, limit, member])
        return None if over is None else (int(over[0]) - 1, float(over[1]))

    def prune_auth_failures(self, *, before: float) -> int:
        return 0  # each set expires by itself once its subject stops failing

    def close(self) -> None:
        self._client.close()


def limiter_for(settings: Settings, control_store: object, max_failures: int, window: float) -> Limiter:
    """The limiter ``settings.auth_failures_url`` asks for (see the module docstring).

    Raises:
        ConfigError: the URL is neither redis://, rediss:// nor memory://.
    """
    url = settings.auth_failures_url
    if url is None:
        if isinstance(control_store, FailureCounts):  # a store every server shares (PostgreSQL)
            return SharedFailureLimiter(control_store, max_failures, window)
        return FailureLimiter(max_failures, window)
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return FailureLimiter(max_failures, window)
    if scheme in ("redis", "rediss"):
        counts = RedisFailureCounts(url)
        return SharedFailureLimiter(counts, max_failures, window, close=counts.close)
    raise ConfigError(
        f"auth_failures_url {url!r} must be redis://host:port/db, rediss://..., or memory:// "
        "(unset: the server's PostgreSQL database, or this process)"
    )
