"""The in-process vector index of one namespace: exact below a size, HNSW above.

Vectors are unit length, so cosine similarity is a dot product. Up to
``exact_max`` vectors the index scans a contiguous float32 matrix with one
matrix-vector product (numpy's speed: measured within 1.1x of a bare
``matrix @ q`` scan); above it an HNSW graph answers in well under a
millisecond (hnswlib; usearch was tried too, but its extension crashes the
process when onnxruntime is imported after it).

The crossover is measured by ``bench/vectors.py``. Query latency alone
favours HNSW early: exact top-10 costs ~0.06 ms per 1k vectors of 384 dims on
2 idle cores (6.4 ms at 100k), HNSW ~0.1-0.3 ms flat, so HNSW answers faster
from ~3-5k vectors (measured crossover: 2k exact 0.054 ms vs HNSW 0.059 ms;
5k and above HNSW wins). But the graph is built in-process when a namespace
is first searched (measured ~1.3 s per 1k vectors on 2 busy cores), and the
exact scan is exact; so the default ``vector_exact_max`` is 20,000, where a
scan still takes ~1-2 ms and a process that asks a few questions never pays
a build. Long-running servers with big namespaces may lower it.

Keys are integers chosen by the store (SQLite's rowid). The index is
maintained incrementally (``upsert``/``remove``), so a store can keep it
coherent with writes from other processes by replaying a change log.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

DEFAULT_EXACT_MAX = 20_000
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 96


def ann_available() -> bool:
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return False
    return True


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class VectorIndex:
    """Unit vectors of one namespace, by integer key; thread-safe."""

    def __init__(self, dimensions: int, *, exact_max: int = DEFAULT_EXACT_MAX):
        self.dimensions = dimensions
        self.exact_max = exact_max
        self._matrix = np.empty((0, dimensions), dtype=np.float32)
        self._keys = np.empty(0, dtype=np.int64)
        self._n = 0
        self._pos: dict[int, int] = {}
        self._ann = None
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._n

    @property
    def uses_ann(self) -> bool:
        return self._ann is not None

    def _grow(self, need: int) -> None:
        if need <= len(self._matrix):
            return
        capacity = max(need, int(len(self._matrix) * 1.5) + 64)
        matrix = np.empty((capacity, self.dimensions), dtype=np.float32)
        matrix[: self._n] = self._matrix[: self._n]
        keys = np.empty(capacity, dtype=np.int64)
        keys[: self._n] = self._keys[: self._n]
        self._matrix, self._keys = matrix, keys

    def upsert(self, keys: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace vectors (rows of unit length) under ``keys``."""
        keys = np.asarray(keys, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(keys), self.dimensions)
        if not len(keys):
            return
        with self._lock:
            self._grow(self._n + len(keys))
            for key, vec in zip(keys.tolist(), vectors):
                pos = self._pos.get(key)
                if pos is None:
                    pos = self._n
                    self._n += 1
                    self._pos[key] = pos
                    self._keys[pos] = key
                self._matrix[pos] = vec
            if self._ann is not None:
                self._ann_add(keys, vectors)  # an existing key is updated (and undeleted) in place
            elif self._n > self.exact_max and ann_available():
                self._build_ann()

    def remove(self, keys: Sequence[int]) -> None:
        """Drop the vectors of ``keys`` (absent keys are ignored)."""
        with self._lock:
            gone = []
            for key in keys:
                pos = self._pos.pop(int(key), None)
                if pos is None:
                    continue
                gone.append(int(key))
                last = self._n - 1
                if pos != last:  # move the last row into the hole: the matrix stays dense
                    moved = int(self._keys[last])
                    self._matrix[pos] = self._matrix[last]
                    self._keys[pos] = moved
                    self._pos[moved] = pos
                self._n = last
            if gone and self._ann is not None:
                for key in gone:
                    self._ann.mark_deleted(key)
                if self._n < self.exact_max // 2:
                    self._ann = None  # small again: exact is both faster and exact

    def _ann_add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        ann = self._ann
        need = ann.get_current_count() + len(keys)
        if need > ann.get_max_elements():
            ann.resize_index(max(need, int(ann.get_max_elements() * 1.5)))
        ann.add_items(vectors, keys, num_threads=-1)

    def _build_ann(self) -> None:
        import hnswlib

        ann = hnswlib.Index(space="ip", dim=self.dimensions)
        ann.init_index(max_elements=max(self._n, 1024), ef_construction=HNSW_EXPANSION_ADD, M=HNSW_CONNECTIVITY)
        ann.set_ef(HNSW_EXPANSION_SEARCH)
        ann.add_items(self._matrix[: self._n], self._keys[: self._n], num_threads=-1)
        self._ann = ann

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest keys and their cosine similarities, best first.

        ``allowed`` (an array of keys) restricts the search to those keys,
        exactly (a filtered subset is scanned, never approximated).
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dimensions)
        with self._lock:
            n = self._n
            if n == 0 or k <= 0:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
            if allowed is not None:
                positions = np.fromiter(
                    (p for p in (self._pos.get(int(key)) for key in allowed) if p is not None), dtype=np.int64
                )
                scores = self._matrix[positions] @ query
                best = top_k(scores, k)
                return self._keys[positions[best]], scores[best]
            if self._ann is not None and k < n:
                labels, distances = self._ann.knn_query(query, k=k)
                return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
            scores = self._matrix[:n] @ query
            best = top_k(scores, k)
            return self._keys[best], scores[best]

    def vectors(self, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of those ``keys`` that are present."""
        with self._lock:
            return {int(k): self._matrix[self._pos[int(k)]].copy() for k in keys if int(k) in self._pos}
