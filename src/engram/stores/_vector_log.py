"""Vector search shared by the backends whose vectors live in a database server (PostgreSQL, Redis).

The server holds one float32 vector per entry, keyed by an integer the
backend chooses (PostgreSQL: the entry's ``seq``; Redis: a hash of the
entry's name), plus a change counter: every write that adds, replaces or
drops a vector -- ``put_vectors``, an upsert that changes an entry's content,
a delete, a prune -- logs ``(namespace, key)`` under the next value of the
counter. Each process searches an in-memory
:class:`~engram.search.vector.VectorIndex` per namespace (exact below
``vector_exact_max`` vectors, HNSW above), loaded on first use. Before each
search it reads the counter (one round trip when nothing changed) and
re-reads just the vectors of the keys logged since it last looked, so writes
of other processes are visible to the next search. A process that fell
behind the kept log drops its indexes and reloads them lazily.

:class:`LoggedVectors` is written once; a backend supplies the primitives
named ``_vl_*`` below and its own ``get_vectors``, ``vectors_by_hash``,
``entries_without_vectors`` and ``clear_vectors`` (which must call
:meth:`LoggedVectors._vl_forget`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from engram.errors import ConfigError
from engram.models import Entry
from engram.search.vector import DEFAULT_EXACT_MAX, VectorIndex, merge_top
from engram.stores.base import MetadataFilter, VectorModel

# Keep this many change-log records; a process further behind reloads from scratch.
CHANGE_LOG_KEEP = 100_000


def to_blob(vector: Any) -> bytes:
    """A vector as little-endian float32 bytes (how every backend stores it)."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


def model_mismatch(url: str, recorded: VectorModel, model: VectorModel) -> ConfigError:
    """The error of writing vectors of ``model`` into a store that holds ``recorded``'s."""
    return ConfigError(
        f"{url} holds vectors of {recorded.name} ({recorded.dimensions} dimensions), not {model.name} "
        f"({model.dimensions}): run `engram reindex` to re-embed every entry with the configured embedder"
    )


class LoggedVectors:
    """``search_vector`` and ``count_vectors`` over a server-side vector table and change log.

    A backend implements:

    * ``_vl_head() -> (newest, oldest)``: the change counter's value and the
      oldest change still logged (None when the log is empty).
    * ``_vl_changes(after, upto) -> [(namespace, key)]``: what changed in
      ``(after, upto]``.
    * ``_vl_vectors(namespace, keys) -> [(key, float32 bytes)]``: the stored
      vectors of a namespace (``keys=None``: all of them).
    * ``_vl_namespaces() -> [namespace]``: namespaces holding vectors.
    * ``_vl_allowed(namespace, metadata, now) -> [key]``: keys of the live
      entries of a namespace that match ``metadata``.
    * ``_vl_entries(keys, now) -> {key: Entry}``: the live entries of those keys.
    * ``_vl_count(namespace) -> int``: vectors stored (``None``: in all namespaces).
    """

    vector_exact_max: int = DEFAULT_EXACT_MAX

    def _vl_state(self) -> dict[str, Any]:
        state = self.__dict__.get("_vl")
        if state is None:
            state = self.__dict__.setdefault("_vl", {"indexes": {}, "seq": None, "lock": threading.RLock()})
        return state

    def _vl_forget(self) -> None:
        """Drop every loaded index (after ``clear_vectors``)."""
        state = self._vl_state()
        with state["lock"]:
            state["indexes"].clear()
            state["seq"] = None

    # Provided by the backend (see the class docstring).
    def _vl_head(self) -> tuple[int, int | None]:
        raise NotImplementedError

    def _vl_changes(self, after: int, upto: int) -> list[tuple[str, int]]:
        raise NotImplementedError

    def _vl_vectors(self, namespace: str, keys: Sequence[int] | None) -> list[tuple[int, bytes]]:
        raise NotImplementedError

    def _vl_namespaces(self) -> list[str]:
        raise NotImplementedError

    def _vl_allowed(self, namespace: str, metadata: MetadataFilter, now: datetime) -> list[int]:
        raise NotImplementedError

    def _vl_entries(self, keys: Sequence[int], now: datetime) -> dict[int, Entry]:
        raise NotImplementedError

    def _vl_count(self, namespace: str | None) -> int:
        raise NotImplementedError

    # -- coherence -------------------------------------------------------------------
    def _vl_refresh(self) -> None:
        """Apply the changes logged since the last look (by any process) to the loaded indexes."""
        state = self._vl_state()
        newest, oldest = self._vl_head()
        seen = state["seq"]
        if seen is not None and newest == seen:
            return
        if seen is None or not state["indexes"] or newest < seen or (oldest is not None and oldest > seen + 1):
            state["indexes"].clear()  # nothing loaded, or fell behind the kept log: reload lazily
            state["seq"] = newest
            return
        by_namespace: dict[str, set[int]] = {}
        for namespace, key in self._vl_changes(seen, newest):
            if namespace in state["indexes"]:
                by_namespace.setdefault(namespace, set()).add(key)
        for namespace, keys in by_namespace.items():
            index = state["indexes"][namespace]
            current = dict(self._vl_vectors(namespace, sorted(keys)))
            index.remove([k for k in keys if k not in current])
            if current:
                ordered = list(current)
                index.upsert(ordered, np.vstack([from_blob(current[k]) for k in ordered]))
        state["seq"] = newest

    def _vl_index(self, namespace: str, dimensions: int) -> VectorIndex:
        state = self._vl_state()
        index = state["indexes"].get(namespace)
        if index is None or index.dimensions != dimensions:
            rows = self._vl_vectors(namespace, None)
            index = VectorIndex(dimensions, exact_max=self.vector_exact_max)
            rows = [r for r in rows if len(r[1]) == 4 * dimensions]
            if rows:
                keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dimensions)
                index.upsert(keys, matrix)
            state["indexes"][namespace] = index
        return index

    # -- the VECTOR primitives ---------------------------------------------------------
    def count_vectors(self, namespace: str | None) -> int:
        return self._vl_count(namespace)

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        namespace: str | None,
        metadata: MetadataFilter,
        limit: int,
        now: datetime,
    ) -> list[tuple[Entry, float]]:
        state = self._vl_state()
        dimensions = len(vector)
        want = limit + 8  # a few spare for entries that expired since
        keys: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        with state["lock"]:
            self._vl_refresh()
            names = [namespace] if namespace is not None else self._vl_namespaces()
            for ns in names:
                index = self._vl_index(ns, dimensions)
                if len(index) == 0:
                    continue
                allowed = None
                if metadata:
                    allowed = np.asarray(self._vl_allowed(ns, metadata, now), dtype=np.int64)
                k, s = index.search(vector, want, allowed=allowed)
                keys.append(k)
                scores.append(s)
        ranked = merge_top(keys, scores, want)
        if not ranked:
            return []
        entries = self._vl_entries([k for k, _ in ranked], now)
        return [(entries[k], s) for k, s in ranked if k in entries][:limit]
