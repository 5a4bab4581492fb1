"""The cache contract: a namespaced view (:class:`Cache`) over a small backend of strings.

A :class:`CacheBackend` stores text values under full keys, with an optional
time to live, and knows nothing of JSON or namespaces; two exist, in-process
(:mod:`engram.cache.memory`) and Redis (:mod:`engram.cache.redis`). A
:class:`Cache` puts a key prefix in front of every key (one per project, so
nothing crosses projects), checks its arguments, turns values into JSON and
back, and counts hits and misses. Every backend therefore behaves the same:
a value comes back as ``json.loads(json.dumps(value))`` (tuples as lists,
dict keys as strings), never as the object that was stored.
"""

from __future__ import annotations

import json
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engram.errors import ContentTooLarge, InvalidInput

MAX_KEY_CHARS = 1024
# One encoder for every value: json.dumps builds a new one per call when given options.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class CacheStats:
    """What a cache holds and how it has answered: ``hits`` and ``misses`` count this
    process's reads through this view; ``size`` is the number of live keys under its prefix."""

    hits: int
    misses: int
    size: int
    backend: str

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


class CacheBackend(ABC):
    """Text values under full keys, with an optional time to live in seconds.

    ``shared`` says whether other processes see the same values (Redis) or
    not (in-process). Implementations translate their driver's errors into
    :mod:`engram.errors`.
    """

    shared: bool = False
    name: str = "cache"

    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """The value of each key (None where absent or expired), in order."""

    @abstractmethod
    def set_many(self, items: Mapping[str, str], ttl: float | None) -> None:
        """Store every item; ``ttl`` seconds from now they expire (None: never)."""

    @abstractmethod
    def delete_many(self, keys: Sequence[str]) -> int:
        """Remove the keys; returns how many were there."""

    @abstractmethod
    def clear(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; returns how many."""

    @abstractmethod
    def count(self, prefix: str) -> int:
        """How many live keys start with ``prefix``."""

    @abstractmethod
    def raise_to(self, key: str, value: float) -> None:
        """Atomically set ``key`` to ``max(value, its number)`` (for engram's bookkeeping)."""

    def describe(self) -> str:
        """Where the values live, for stats and errors (no password)."""
        return self.name

    def close(self) -> None:
        """Release connections. Safe to call twice."""


def check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidInput(f"cache keys must be strings, not {type(key).__name__}")
    if not key or len(key) > MAX_KEY_CHARS:
        raise InvalidInput(
            f"cache keys must be 1-{MAX_KEY_CHARS} characters, got {len(key)}"
        )
    return key


def check_ttl(ttl: Any) -> float | None:
    if ttl is None:
        return None
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, (int, float))
        or not math.isfinite(ttl)
        or ttl <= 0
    ):
        raise InvalidInput(
            f"ttl must be a positive number of seconds or None (no expiry), got {ttl!r}"
        )
    return float(ttl)


def dump(value: Any, limit: int | None = None) -> str:
    """The JSON text of a value; InvalidInput for what JSON cannot hold."""
    try:
        text = json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(
            "cache values must be JSON-serializable (dict with string keys, list, str, int, float, bool, None): "
            f"{exc}; convert the value first (e.g. model.model_dump(mode='json'), or base64 for bytes)"
        ) from None
    if (
        limit is not None
        and len(text) > limit
        and len(text.encode("utf-8", "surrogatepass")) > limit
    ):
        raise ContentTooLarge(
            f"cache value is {len(text.encode('utf-8', 'surrogatepass'))} bytes as JSON; the limit is {limit}"
        )
    return text


class Cache:
    """A project's cache: JSON values under keys, with an optional time to live.

    ``memory.cache`` is one; engram keeps its own values (embeddings, search
    results) under other prefixes of the same backend, out of this view's
    reach. Thread-safe.

    Args:
        backend: where the values live.
        prefix: put in front of every key (the project's namespace).
        default_ttl: seconds a value lives when ``set`` names no ``ttl`` (None: until evicted).
        max_value_bytes: largest JSON text accepted by ``set`` (None: no limit).
    """

    def __init__(
        self,
        backend: CacheBackend,
        prefix: str,
        *,
        default_ttl: float | None = None,
        max_value_bytes: int | None = None,
    ):
        self.backend = backend
        self.prefix = prefix
        self.default_ttl = default_ttl
        self.max_value_bytes = max_value_bytes
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Cache({self.backend.describe()!r}, prefix={self.prefix!r})"

    def tally(self, *, hits: int = 0, misses: int = 0) -> None:
        """Add to the hit and miss counts (for readers that go through :meth:`get_text`)."""
        with self._lock:
            self._hits += hits
            self._misses += misses

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when it is absent or expired."""
        text = self.backend.get_many([self.prefix + check_key(key)])[0]
        self.tally(hits=int(text is not None), misses=int(text is None))
        return default if text is None else json.loads(text)

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (JSON-serializable) under ``key``; it expires ``ttl`` seconds from now.

        Raises:
            InvalidInput: the key is not a 1-1024 character string, ``ttl`` is not a
                positive number, or the value cannot be written as JSON.
            ContentTooLarge: the value is over ``max_value_bytes``.
        """
        full = self.prefix + check_key(key)
        ttl = check_ttl(ttl)
        self.backend.set_many(
            {full: dump(value, self.max_value_bytes)},
            ttl if ttl is not None else self.default_ttl,
        )

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return self.backend.delete_many([self.prefix + check_key(key)]) > 0

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a live value (a stored None counts)."""
        return self.backend.get_many([self.prefix + check_key(key)])[0] is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that hold one (absent and expired keys are left out)."""
        if isinstance(keys, str):
            raise InvalidInput("get_many takes a list of keys, not one string")
        keys = list(dict.fromkeys(check_key(k) for k in keys))
        if not keys:
            return {}
        texts = self.backend.get_many([self.prefix + k for k in keys])
        found = {k: json.loads(t) for k, t in zip(keys, texts) if t is not None}
        self.tally(hits=len(found), misses=len(keys) - len(found))
        return found

    def set_many(self, items: Mapping[str, Any], ttl: float | None = None) -> None:
        """Store every ``key: value`` of ``items``, all with the same ``ttl``; none when one is invalid."""
        if not isinstance(items, Mapping):
            raise InvalidInput(
                f"set_many takes a mapping of key to value, not {type(items).__name__}"
            )
        ttl = check_ttl(ttl)
        texts = {
            self.prefix + check_key(k): dump(v, self.max_value_bytes)
            for k, v in items.items()
        }
        if texts:
            self.backend.set_many(texts, ttl if ttl is not None else self.default_ttl)

    def clear(self, prefix: str | None = None) -> int:
        """Remove every key of this cache (only those starting with ``prefix`` when given); returns how many."""
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidInput(f"prefix must be a string, not {type(prefix).__name__}")
        return self.backend.clear(self.prefix + (prefix or ""))

    def stats(self) -> CacheStats:
        """Hits and misses of this process's reads, and the live keys of this cache."""
        size = self.backend.count(self.prefix)
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                size=size,
                backend=self.backend.describe(),
            )

    # engram's own bookkeeping (search-cache generations) goes through these two.
    def get_text(self, keys: Sequence[str]) -> list[str | None]:
        return self.backend.get_many([self.prefix + k for k in keys])

    def raise_to(self, key: str, value: float) -> None:
        self.backend.raise_to(self.prefix + key, value)
