"""The in-process vector index of one namespace: exact below a size, HNSW above.

Vectors are unit length, so cosine similarity is a dot product. Up to
``exact_max`` vectors the index scans a contiguous float32 matrix; above it
an HNSW graph (hnswlib) answers in well under a millisecond and holds the
vectors itself (the matrix is dropped, so a big namespace is kept once).
usearch was tried too, but its extension crashes the process when
onnxruntime is imported after it.

The exact scan is single-threaded on purpose. numpy's ``matrix @ q`` is an
OpenBLAS gemv that goes multi-threaded as the matrix grows; on 2 cores shared
with other work its threads wait for each other: measured with both cores
busy elsewhere, it jumped from 0.32 ms at 8k vectors to 3.2 ms at 12k and
8.2 ms at 20k, while the single-threaded product below took 0.85 and 1.3 ms
(and 0.3-0.5x numpy's time at 100k and 1M). On idle cores numpy is up to
1.7x faster between 8k and 20k, a fraction of a millisecond; up to 8k rows
one gemv is fastest either way, so it is used there.

The crossover is measured by ``bench/vectors.py`` (top-10, 384 dims, load
average ~2 on 2 cores): exact 0.05 / 0.11 / 0.41 / 1.06 / 2.8 ms at 2k / 5k /
10k / 20k / 50k vectors, HNSW 0.07 / 0.09 / 0.10 / 0.15 / 0.18 ms, so HNSW
answers faster from ~5k vectors. But an HNSW graph costs ~0.3-1.3 ms per
vector to build (100k in 51 s, 1M in 302 s on both cores; more under load),
and the exact scan is exact, so the default ``vector_exact_max`` is 20,000,
where a scan still takes ~1 ms. Stores persist graphs (see
:mod:`engram.search.vector.engine` and its graph-file hook), so the build is paid once, not per process.

Keys are integers chosen by the store (SQLite's rowid). The index is
maintained incrementally (``upsert``/``remove``), so a store can keep it
coherent with writes from other processes by replaying a change log.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_EXACT_MAX = 20_000
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 128  # the search beam (ef) up to ~160k vectors ...
HNSW_VECTORS_PER_EF = 1250  # ... then one more per this many vectors (ef 800 at 1M) ...
HNSW_EXPANSION_SEARCH_MAX = 1024  # ... up to this
SMALL_SCAN = 8192  # rows up to which the exact scan is one gemv (fastest there, even under load)


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


def search_expansion(size: int) -> int:
    """HNSW's search beam for a graph of ``size`` vectors.

    A fixed beam loses recall as the graph grows: on bench/vectors.py's data
    (M=16, ef_construction=128) ef=128 gave recall@10 0.978 at 100k but 0.765
    at 1M, where ef=500 gave 0.931 and ef=800 0.958 (0.9 ms a query against
    ~190 ms for numpy's scan). So the beam grows with the graph.
    """
    return max(HNSW_EXPANSION_SEARCH, min(HNSW_EXPANSION_SEARCH_MAX, size // HNSW_VECTORS_PER_EF))


def dot_scores(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query`` for a float32 matrix of rows, on the calling thread only.

    Above :data:`SMALL_SCAN` rows the product is computed as a stack of
    one-row products, which numpy runs single-threaded (each is far below
    OpenBLAS's threading threshold), instead of one multi-threaded gemv.
    """
    if len(matrix) <= SMALL_SCAN:
        return matrix @ query
    return np.matmul(matrix[:, None, :], query)[:, 0]


class VectorIndex:
    """Unit vectors of one namespace, by integer key; thread-safe.

    Exact (a dense matrix) up to ``exact_max`` vectors, HNSW above when
    hnswlib is installed, and exact again when deletions bring it under half
    of ``exact_max``. ``changes`` counts upserted and removed keys; stores use
    it to decide when a saved graph is worth writing again.
    """

    def __init__(self, dimensions: int, *, exact_max: int = DEFAULT_EXACT_MAX):
        self.dimensions = dimensions
        self.exact_max = exact_max
        self.changes = 0
        self._lock = threading.RLock()
        self._reset_exact()
        self._ann: Any = None
        self._live: set[int] = set()  # ANN: keys in the graph and not deleted
        self._dead: set[int] = set()  # ANN: keys marked deleted in the graph

    def _reset_exact(self) -> None:
        self._matrix = np.empty((0, self.dimensions), dtype=np.float32)
        self._keys = np.empty(0, dtype=np.int64)
        self._n = 0
        self._pos: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._live) if self._ann is not None else self._n

    @property
    def uses_ann(self) -> bool:
        return self._ann is not None

    # -- writes ----------------------------------------------------------------
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
            self.changes += len(keys)
            if self._ann is not None:
                # A key twice in one batch: keep the last (parallel inserts of one label race).
                _, last = np.unique(keys[::-1], return_index=True)
                if len(last) != len(keys):
                    pick = np.sort(len(keys) - 1 - last)
                    keys, vectors = keys[pick], vectors[pick]
                self._ann_add(keys, vectors)  # an existing key is updated (and undeleted) in place
                return
            self._grow(self._n + len(keys))
            listed = keys.tolist()
            if not any(k in self._pos for k in listed) and len(set(listed)) == len(listed):
                # All new (loading a namespace, a bulk write): one copy, no per-row loop.
                start, end = self._n, self._n + len(listed)
                self._matrix[start:end] = vectors
                self._keys[start:end] = keys
                self._pos.update(zip(listed, range(start, end)))
                self._n = end
                listed = []
            for key, vec in zip(listed, vectors):
                pos = self._pos.get(key)
                if pos is None:
                    pos = self._n
                    self._n += 1
                    self._pos[key] = pos
                    self._keys[pos] = key
                self._matrix[pos] = vec
            if self._n > self.exact_max and ann_available():
                self._build_ann(self._keys[: self._n], self._matrix[: self._n])

    def remove(self, keys: Iterable[int]) -> None:
        """Drop the vectors of ``keys`` (absent keys are ignored)."""
        with self._lock:
            if self._ann is not None:
                gone = [k for k in (int(k) for k in keys) if k in self._live]
                for key in gone:
                    self._ann.mark_deleted(key)
                    self._live.discard(key)
                    self._dead.add(key)
                self.changes += len(gone)
                if len(self._live) < self.exact_max // 2:
                    self._to_exact()  # small again: exact is both faster and exact
                elif len(self._dead) > max(len(self._live), 1024):
                    self._compact()  # mostly tombstones: searches would wade through them
                return
            for key in keys:
                pos = self._pos.pop(int(key), None)
                if pos is None:
                    continue
                self.changes += 1
                last = self._n - 1
                if pos != last:  # move the last row into the hole: the matrix stays dense
                    moved = int(self._keys[last])
                    self._matrix[pos] = self._matrix[last]
                    self._keys[pos] = moved
                    self._pos[moved] = pos
                self._n = last

    def _ann_add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        ann = self._ann
        new = sum(1 for k in keys.tolist() if k not in self._live and k not in self._dead)
        need = ann.get_current_count() + new
        if need > ann.get_max_elements():
            ann.resize_index(max(need, int(ann.get_max_elements() * 1.5)))
        ann.add_items(vectors, keys, num_threads=-1)
        added = set(keys.tolist())
        self._live |= added
        self._dead -= added
        ann.set_ef(search_expansion(len(self._live)))

    def _build_ann(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Replace whatever the index holds by an HNSW graph of these vectors (all threads)."""
        import hnswlib

        ann = hnswlib.Index(space="ip", dim=self.dimensions)
        ann.init_index(max_elements=max(len(keys), 1024), ef_construction=HNSW_EXPANSION_ADD, M=HNSW_CONNECTIVITY)
        ann.set_ef(search_expansion(len(keys)))
        ann.add_items(vectors, keys, num_threads=-1)
        self._ann = ann
        self._live = set(np.asarray(keys).tolist())
        self._dead = set()
        self._reset_exact()  # the graph holds the vectors now
        self.changes = max(self.changes, len(self._live))  # a new graph: all of it is unsaved

    def _live_items(self) -> tuple[np.ndarray, np.ndarray]:
        keys = np.fromiter(self._live, dtype=np.int64, count=len(self._live))
        if not len(keys):
            return keys, np.empty((0, self.dimensions), dtype=np.float32)
        return keys, np.asarray(self._ann.get_items(keys), dtype=np.float32).reshape(len(keys), self.dimensions)

    def _to_exact(self) -> None:
        keys, vectors = self._live_items()
        self._ann, self._live, self._dead = None, set(), set()
        self._reset_exact()
        self._grow(len(keys))
        self._matrix[: len(keys)] = vectors
        self._keys[: len(keys)] = keys
        self._n = len(keys)
        self._pos = {k: i for i, k in enumerate(keys.tolist())}

    def _compact(self) -> None:
        keys, vectors = self._live_items()
        self._build_ann(keys, vectors)

    # -- reads -------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest keys and their cosine similarities, best first.

        ``allowed`` (an array of keys) restricts the search to those keys,
        exactly (a filtered subset is scanned, never approximated).
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dimensions)
        with self._lock:
            n = len(self)
            if n == 0 or k <= 0:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
            if self._ann is not None:
                return self._search_ann(query, k, allowed)
            if allowed is not None:
                positions = np.fromiter(
                    (p for p in (self._pos.get(int(key)) for key in allowed) if p is not None), dtype=np.int64
                )
                scores = dot_scores(self._matrix[positions], query)
                best = top_k(scores, k)
                return self._keys[positions[best]], scores[best]
            scores = dot_scores(self._matrix[:n], query)
            best = top_k(scores, k)
            return self._keys[best], scores[best]

    def _search_ann(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None and k < len(self._live):
            try:
                labels, distances = self._ann.knn_query(query, k=k, num_threads=1)
                return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
            except RuntimeError:
                pass  # hnswlib found fewer than k live neighbours (many tombstones): scan instead
        if allowed is None:
            keys, vectors = self._live_items()
        else:
            keys = np.fromiter((int(key) for key in allowed if int(key) in self._live), dtype=np.int64)
            vectors = np.asarray(self._ann.get_items(keys), dtype=np.float32).reshape(len(keys), self.dimensions) if len(keys) else np.empty((0, self.dimensions), dtype=np.float32)
        scores = dot_scores(vectors, query)
        best = top_k(scores, k)
        return keys[best], scores[best]

    def vectors(self, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of those ``keys`` that are present."""
        with self._lock:
            if self._ann is not None:
                present = [int(k) for k in keys if int(k) in self._live]
                if not present:
                    return {}
                found = np.asarray(self._ann.get_items(present), dtype=np.float32)
                return {k: found[i].copy() for i, k in enumerate(present)}
            return {int(k): self._matrix[self._pos[int(k)]].copy() for k in keys if int(k) in self._pos}

    # -- persistence (HNSW only: an exact index is cheap to load from its store) --
    def save(self, path: str | Path) -> dict[str, Any]:
        """Write the HNSW graph to ``path``; returns what :meth:`load` needs besides the file.

        Raises:
            ValueError: the index is exact (nothing worth saving).
        """
        with self._lock:
            if self._ann is None:
                raise ValueError("an exact vector index is not saved; it loads from its store")
            self._ann.save_index(str(path))
            self.changes = 0
            return {"dimensions": self.dimensions, "count": len(self._live), "deleted": sorted(self._dead)}

    @classmethod
    def load(cls, path: str | Path, info: dict[str, Any], *, exact_max: int = DEFAULT_EXACT_MAX) -> VectorIndex:
        """An index over the HNSW graph saved at ``path`` with :meth:`save` (``info`` is what it returned).

        Raises:
            ValueError: the file does not hold what ``info`` describes.
            RuntimeError, OSError: hnswlib cannot read the file.
        """
        import hnswlib

        index = cls(int(info["dimensions"]), exact_max=exact_max)
        ann = hnswlib.Index(space="ip", dim=index.dimensions)
        ann.load_index(str(path))
        if ann.dim != index.dimensions:
            raise ValueError(f"{path} holds {ann.dim}-dimensional vectors, not {index.dimensions}")
        dead = {int(k) for k in info.get("deleted", ())}
        live = set(ann.get_ids_list()) - dead
        ann.set_ef(search_expansion(len(live)))
        if len(live) != int(info["count"]):
            raise ValueError(f"{path} holds {len(live)} live vectors, its description says {info['count']}")
        index._ann, index._live, index._dead = ann, live, dead
        return index


def merge_top(keys: list[np.ndarray], scores: list[np.ndarray], want: int) -> list[tuple[int, float]]:
    """Best ``want`` (key, score) pairs over the per-namespace results, best first; ties keep their order."""
    if not keys:
        return []
    all_keys = np.concatenate(keys)
    all_scores = np.concatenate(scores)
    order = np.argsort(-all_scores, kind="stable")[:want]
    return [(int(all_keys[i]), float(all_scores[i])) for i in order]
