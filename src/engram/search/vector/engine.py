"""The vector engine, written once: an index per namespace over a backend's rows, kept coherent by its change log.

Every backend stores one float32 vector per record (an entry, a message)
under an integer key it chooses (SQLite's rowid, PostgreSQL's ``seq``, a
hash in Redis, a counter in memory), grouped by namespace (messages use one
namespace of their own), and -- when other processes may write -- a change
counter: every write that adds, replaces or drops a vector logs
``(namespace, key)`` under the next value of the counter. The backend hands
those rows over through :class:`VectorRows`; :class:`VectorEngine` does the
rest:

* loads the :class:`~engram.search.vector.index.VectorIndex` of a namespace
  on first use (exact below ``exact_max`` vectors, HNSW above);
* before each search reads the counter (one round trip when nothing
  changed) and re-reads just the vectors of the keys logged since it last
  looked, so writes of other processes are visible to the next search; a
  process that fell behind the kept log drops its indexes and reloads them
  lazily;
* searches each namespace (restricted to ``allowed`` keys when a filter
  applies) and merges the best across namespaces.

A backend without other writers (the in-process one) has no log
(:class:`HeldRows`): its ``head`` never moves, and it applies its writes to
the loaded indexes itself (:meth:`VectorEngine.upsert`, :meth:`VectorEngine.remove`).

Saving HNSW graphs so a new process need not rebuild them is a
:class:`GraphHook` (SQLite's graph files, :mod:`engram.stores.sqlite.vector_files`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engram.search.vector.index import DEFAULT_EXACT_MAX, VectorIndex, merge_top

# Keep this many change-log records; a process further behind reloads from scratch.
CHANGE_LOG_KEEP = 100_000

# Message vectors sit in one namespace of their own and their index stays exact:
# most message searches are scoped to a session or a user, and a scope is
# scanned exactly anyway, while an HNSW graph costs ~0.5-1.3 ms per vector to
# build and, unlike entry graphs, is not saved, so every process would pay it
# on its first search. An unscoped scan is ~0.06 ms per 1k vectors (384 dims).
MESSAGES = "messages"
MESSAGE_EXACT_MAX = 1 << 62  # never HNSW


def to_blob(vector: Any) -> bytes:
    """A vector as little-endian float32 bytes (how every backend stores it)."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """The float32 vector of :func:`to_blob`'s bytes (read-only: it shares the buffer)."""
    return np.frombuffer(blob, dtype="<f4")


class VectorRows(Protocol):
    """What a backend provides the engine: its stored vectors and its change log."""

    def head(self) -> tuple[int, int | None]:
        """The change counter's value and the oldest change still logged (None: the log is empty)."""
        ...

    def changes(self, after: int, upto: int) -> list[tuple[str, int]]:
        """``(namespace, key)`` of the changes logged in ``(after, upto]``."""
        ...

    def vectors(self, namespace: str, keys: Sequence[int] | None) -> list[tuple[int, bytes]]:
        """The stored ``(key, float32 bytes)`` of a namespace (``keys=None``: all of them)."""
        ...


@dataclass(frozen=True)
class FunctionRows:
    """A :class:`VectorRows` made of a backend's three functions."""

    head: Callable[[], tuple[int, int | None]]
    changes: Callable[[int, int], list[tuple[str, int]]]
    vectors: Callable[[str, Sequence[int] | None], list[tuple[int, bytes]]]


class HeldRows:
    """The rows of vectors held in this process (no other writer, so no change log).

    ``held(namespace)`` yields ``(key, vector)``; the backend applies its writes
    to the loaded indexes itself (:meth:`VectorEngine.upsert`, :meth:`VectorEngine.remove`).
    """

    def __init__(self, held: Callable[[str], Iterable[tuple[int, np.ndarray]]]):
        self.held = held

    def head(self) -> tuple[int, int | None]:
        return 0, None

    def changes(self, after: int, upto: int) -> list[tuple[str, int]]:
        return []

    def vectors(self, namespace: str, keys: Sequence[int] | None) -> list[tuple[int, bytes]]:
        wanted = None if keys is None else set(keys)
        return [(k, to_blob(v)) for k, v in self.held(namespace) if wanted is None or k in wanted]


class GraphHook(Protocol):
    """Persistence of HNSW graphs, so the build is paid once, not by every process."""

    def load(self, engine: VectorEngine, namespace: str, dimensions: int) -> VectorIndex | None:
        """A saved index of ``namespace`` brought up to ``engine.seq``, or None (build from the rows)."""
        ...

    def built(self, engine: VectorEngine, namespace: str, index: VectorIndex) -> None:
        """``index`` was just built from the rows (save it, or drop saved graphs it makes obsolete)."""
        ...

    def refreshed(self, engine: VectorEngine, namespace: str, index: VectorIndex) -> None:
        """``index`` took changes from the log (save it again when they are many)."""
        ...


class VectorEngine:
    """The loaded indexes of one kind of vectors (entries, or messages) of one store; thread-safe under ``lock``."""

    def __init__(self, rows: VectorRows, *, exact_max: int = DEFAULT_EXACT_MAX, graphs: GraphHook | None = None):
        self.rows = rows
        self.exact_max = exact_max
        self.graphs = graphs
        self.indexes: dict[str, VectorIndex] = {}
        self.seq: int | None = None  # the newest change applied to the loaded indexes
        self.lock = threading.RLock()

    def forget(self) -> None:
        """Drop every loaded index (after the vectors were cleared)."""
        with self.lock:
            self.indexes.clear()
            self.seq = None

    # -- coherence -------------------------------------------------------------------
    def refresh(self, *, notify: bool = True) -> None:
        """Apply the changes logged since the last look (by any process) to the loaded indexes.

        With ``notify``, the graph hook hears of each index that took changes.
        """
        with self.lock:
            newest, oldest = self.rows.head()
            seen = self.seq
            if seen is not None and newest == seen:
                return
            if seen is None or not self.indexes or newest < seen or (oldest is not None and oldest > seen + 1):
                self.indexes.clear()  # nothing loaded, fell behind the kept log, or a replaced store: reload lazily
                self.seq = newest
                return
            by_namespace: dict[str, set[int]] = {}
            for namespace, key in self.rows.changes(seen, newest):
                if namespace in self.indexes:
                    by_namespace.setdefault(namespace, set()).add(key)
            for namespace, keys in by_namespace.items():
                self.apply(namespace, self.indexes[namespace], sorted(keys))
            self.seq = newest
            if notify and self.graphs is not None:
                for namespace in by_namespace:
                    self.graphs.refreshed(self, namespace, self.indexes[namespace])

    def apply(self, namespace: str, index: VectorIndex, keys: Sequence[int]) -> None:
        """Make ``index`` hold the current vectors of ``keys`` (or not hold them, when gone)."""
        current = dict(self.rows.vectors(namespace, keys))
        index.remove([k for k in keys if k not in current])
        if current:
            ordered = list(current)
            index.upsert(ordered, np.vstack([from_blob(current[k]) for k in ordered]))

    def build(self, namespace: str, dimensions: int) -> VectorIndex:
        """A new index of every stored vector of ``namespace`` (vectors of another size are skipped)."""
        index = VectorIndex(dimensions, exact_max=self.exact_max)
        rows = [r for r in self.rows.vectors(namespace, None) if len(r[1]) == 4 * dimensions]
        if rows:
            keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dimensions)
            index.upsert(keys, matrix)
        return index

    def index(self, namespace: str, dimensions: int) -> VectorIndex:
        """The loaded index of ``namespace`` (loaded, or built, now when it is not)."""
        with self.lock:
            index = self.indexes.get(namespace)
            if index is None or index.dimensions != dimensions:
                index = None if self.graphs is None else self.graphs.load(self, namespace, dimensions)
                if index is None:
                    index = self.build(namespace, dimensions)
                    if self.graphs is not None:
                        self.graphs.built(self, namespace, index)
                self.indexes[namespace] = index
            return index

    # -- writes of a backend without a log ----------------------------------------------
    def upsert(self, namespace: str, keys: Sequence[int], vectors: np.ndarray) -> None:
        """Add or replace vectors in the index of ``namespace`` (when loaded: else it loads them with the rest)."""
        with self.lock:
            index = self.indexes.get(namespace)
            if index is not None and index.dimensions == vectors.shape[-1]:
                index.upsert(keys, vectors)
            elif index is not None:
                del self.indexes[namespace]  # vectors of another size: reload

    def remove(self, namespace: str, keys: Sequence[int]) -> None:
        """Drop vectors from the index of ``namespace`` (when loaded)."""
        with self.lock:
            if namespace in self.indexes:
                self.indexes[namespace].remove(keys)

    # -- reads -----------------------------------------------------------------------------
    def search(
        self,
        vector: np.ndarray,
        namespaces: Sequence[str],
        want: int,
        *,
        allowed: Callable[[str], Sequence[int]] | None = None,
    ) -> list[tuple[int, float]]:
        """The best ``want`` ``(key, score)`` over ``namespaces``, best first, after a refresh.

        ``allowed(namespace)`` (when given) lists the keys a filter admits there;
        those are scanned exactly.
        """
        dimensions = len(vector)
        keys: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        with self.lock:
            self.refresh()
            for namespace in namespaces:
                index = self.index(namespace, dimensions)
                if len(index) == 0:
                    continue
                admitted = None if allowed is None else np.asarray(allowed(namespace), dtype=np.int64)
                k, s = index.search(vector, want, allowed=admitted)
                keys.append(k)
                scores.append(s)
        return merge_top(keys, scores, want)

    def count(self, namespace: str) -> int | None:
        """Vectors in the loaded index of ``namespace`` after a refresh; None when it is not loaded."""
        with self.lock:
            self.refresh()
            index = self.indexes.get(namespace)
            return None if index is None else len(index)
