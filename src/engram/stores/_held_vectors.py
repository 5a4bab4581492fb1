"""Vectors held in this process (the in-process backend, and so the JSON one), entries and messages alike.

Each vector remembers the content it embeds: one whose record was deleted or
rewritten is stale, is never returned, and is dropped when a search or count
meets it (:meth:`HeldVectors.sweep`), so the record primitives need no hooks.
Searches run on the one vector engine (:mod:`engram.search.vector`) over
:class:`~engram.search.vector.HeldRows`: no change log, no other writer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from engram.search.vector import HeldRows, VectorEngine


def held_state(owner: Any, attribute: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The vector state a store keeps in ``attribute``, made on first use (a store opens without vectors)."""
    state = owner.__dict__.get(attribute)
    if state is None:
        state = owner.__dict__.setdefault(attribute, make())
    return state


class HeldVectors:
    """Vectors by record (``ident``: an entry's ``(namespace, key)``, a message's id), searched by the engine.

    ``vectors`` maps an ident to ``(key in the index, content embedded, vector)``.
    With ``namespace`` every record is in that one namespace (messages); without,
    an ident is ``(namespace, key)``. ``counts`` holds the vectors per namespace,
    in the order the namespaces first got one.
    """

    def __init__(self, namespace: str | None = None, *, exact_max: int):
        self.vectors: dict[Any, tuple[int, str, np.ndarray]] = {}
        self.idents: dict[int, Any] = {}
        self.counts: dict[str, int] = {}
        self.namespace = namespace
        self._keys = itertools.count(1)
        self.engine = VectorEngine(HeldRows(self._rows), exact_max=exact_max)

    def namespace_of(self, ident: Any) -> str:
        return self.namespace if self.namespace is not None else ident[0]

    def _rows(self, namespace: str) -> list[tuple[int, np.ndarray]]:
        if self.namespace is not None:
            return [(k, v) for k, _, v in self.vectors.values()] if namespace == self.namespace else []
        return [(k, v) for ident, (k, _, v) in self.vectors.items() if ident[0] == namespace]

    def put(self, ident: Hashable, content: str, vector: Any) -> None:
        held = self.vectors.get(ident)
        if held is None:
            namespace = self.namespace_of(ident)
            self.counts[namespace] = self.counts.get(namespace, 0) + 1
        key = held[0] if held else next(self._keys)
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        self.vectors[ident] = (key, content, vector)
        self.idents[key] = ident
        self.engine.upsert(self.namespace_of(ident), [key], vector.reshape(1, -1))

    def drop(self, idents: Iterable[Any]) -> None:
        by_namespace: dict[str, list[int]] = {}
        for ident in idents:
            held = self.vectors.pop(ident, None)
            if held is not None:
                self.idents.pop(held[0], None)
                namespace = self.namespace_of(ident)
                by_namespace.setdefault(namespace, []).append(held[0])
                self.counts[namespace] -= 1
                if not self.counts[namespace]:
                    del self.counts[namespace]
        for namespace, keys in by_namespace.items():
            self.engine.remove(namespace, keys)

    def sweep(self, fresh: Callable[[Any, str], bool], namespace: str | None = None) -> None:
        """Drop the vectors (of ``namespace``, or all) whose record no longer holds the content embedded."""
        if namespace is None or namespace == self.namespace:
            stale = [ident for ident, (_, content, _) in self.vectors.items() if not fresh(ident, content)]
        else:
            stale = [i for i, (_, content, _) in self.vectors.items() if i[0] == namespace and not fresh(i, content)]
        self.drop(stale)

    def clear(self) -> int:
        n = len(self.vectors)
        self.vectors.clear()
        self.idents.clear()
        self.counts.clear()
        self.engine.forget()
        return n

    def keys(self, admit: Callable[[Any], bool]) -> list[int]:
        """Index keys of the held records ``admit`` accepts (a filter's ``allowed``)."""
        return [held[0] for ident, held in self.vectors.items() if admit(ident)]

    def search(
        self, vector: Any, namespaces: Sequence[str], want: int, allowed: Callable[[str], Sequence[int]] | None
    ) -> list[tuple[Any, float]]:
        """The best ``want`` ``(ident, score)``, best first."""
        ranked = self.engine.search(vector, namespaces, want, allowed=allowed)
        return [(self.idents[k], s) for k, s in ranked if k in self.idents]
