"""Vector storage and search for the in-process backend (mixed into ``MemoryStore``).

The vectors are :class:`~engram.stores._held_vectors.HeldVectors` by entry
``(namespace, key)``: a vector whose entry was deleted or whose content
or context changed is stale (it holds the text it embeds), is never returned, and is dropped when a search or count
meets it. So the entry primitives need no hooks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from engram.embeddings.cache import content_hash
from engram.models import Entry
from engram.search.context import embedded_text
from engram.search.vector import DEFAULT_EXACT_MAX
from engram.stores._filters import is_live, metadata_matches
from engram.stores._held_vectors import HeldVectors, held_state
from engram.stores._vector_log import model_mismatch
from engram.stores.base import MetadataFilter, VectorItem, VectorModel

Ident = tuple[str, str]


class MemoryVectors:
    """The VECTOR primitives of ``MemoryStore``; reads its ``_entries`` under ``_lock``."""

    vector_exact_max: int = DEFAULT_EXACT_MAX
    _entries: dict[Ident, Entry]
    _lock: Any
    url: str
    put_entries: Any

    def _vstate(self) -> dict[str, Any]:
        """``model`` (the store's one, shared with message vectors), ``held``, its ``vectors``, ``lock``."""
        state = held_state(self, "_vectors_state", self._new_vector_state)
        state["held"].engine.exact_max = self.vector_exact_max  # set on the store after it opened
        return state

    def _new_vector_state(self) -> dict[str, Any]:
        held = HeldVectors(exact_max=self.vector_exact_max)
        return {"model": None, "held": held, "vectors": held.vectors, "lock": threading.RLock()}

    def _fresh(self, ident: Ident, embedded: str) -> bool:
        """Whether the entry ``ident`` still holds the text a vector embeds (its context, then its content)."""
        entry = self._entries.get(ident)
        return entry is not None and embedded_text(entry.content, entry.context) == embedded

    def _sweep(self, state: dict[str, Any], namespace: str | None) -> None:
        state["held"].sweep(self._fresh, namespace)

    def vector_model(self) -> VectorModel | None:
        return self._vstate()["model"]

    def _check_vector_model(self, state: dict[str, Any], model: VectorModel) -> None:
        recorded = state["model"]
        if recorded is not None and recorded != model:
            raise model_mismatch(self.url, recorded, model)

    def _record_vector_model(self, state: dict[str, Any], model: VectorModel) -> None:
        """Record the store's one model (entry and message vectors), or check it is the one recorded."""
        self._check_vector_model(state, model)
        if state["model"] is None:
            state["model"] = model

    def put_entries_with_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], *, now: datetime, model: VectorModel
    ) -> list[Entry]:
        state = self._vstate()
        with self._lock, state["lock"]:  # one lock: no reader sees one without the other
            if vectors:
                self._check_vector_model(state, model)  # before anything changes: all or nothing
            stored = self.put_entries(entries, now=now)
            if vectors:
                self.put_vectors(vectors, model=model)
        return stored

    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        state = self._vstate()
        with self._lock, state["lock"]:
            self._record_vector_model(state, model)
            stored = 0
            for item in items:
                ident = (item.namespace, item.key)
                embedded = item.embedded
                if self._fresh(ident, embedded):
                    state["held"].put(ident, embedded, item.vector)
                    stored += 1
        return stored

    def clear_vectors(self) -> int:
        state = self._vstate()
        with state["lock"]:
            state["model"] = None
            return state["held"].clear()

    def count_vectors(self, namespace: str | None) -> int:
        state = self._vstate()
        with self._lock, state["lock"]:
            self._sweep(state, namespace)
            return len(state["vectors"]) if namespace is None else state["held"].counts.get(namespace, 0)

    def get_vectors(self, idents: Sequence[Ident]) -> dict[Ident, np.ndarray]:
        state = self._vstate()
        with self._lock, state["lock"]:
            found = {}
            for ident in idents:
                held = state["vectors"].get(ident)
                if held is not None and self._fresh(ident, held[1]):
                    found[ident] = held[2].copy()
            return found

    def vectors_by_hash(self, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        wanted = set(digests)
        state = self._vstate()
        with self._lock, state["lock"]:
            found = {}
            for ident, (_, embedded, vector) in state["vectors"].items():
                if self._fresh(ident, embedded):
                    digest = content_hash(embedded)
                    if digest in wanted:
                        found[digest] = vector.copy()
            return found

    def entries_without_vectors(self, namespace: str | None, *, batch_size: int = 256) -> Iterator[list[Entry]]:
        state = self._vstate()
        with self._lock, state["lock"]:
            self._sweep(state, namespace)
            missing = [
                e
                for ident, e in self._entries.items()
                if (namespace is None or ident[0] == namespace) and ident not in state["vectors"]
            ]
        for i in range(0, len(missing), batch_size):
            yield missing[i : i + batch_size]

    def search_vector(
        self, vector: np.ndarray, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        state = self._vstate()
        with self._lock, state["lock"]:
            self._sweep(state, namespace)
            held = state["held"]
            names = [namespace] if namespace is not None else list(held.counts)

            def allowed(ns: str) -> list[int]:
                return held.keys(lambda i: i[0] == ns and metadata_matches(self._entries[i].metadata, metadata))

            found = []
            for ident, score in held.search(vector, names, limit + 8, allowed if metadata else None):
                entry = self._entries.get(ident)
                if entry is not None and is_live(entry, now):
                    found.append((entry, score))
        return found[:limit]
