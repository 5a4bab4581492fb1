"""Entry and message vectors of the backends with a change log (SQLite, PostgreSQL, Redis).

The database holds one float32 vector per entry (keyed by an integer the
backend chooses -- SQLite: the entry's rowid; PostgreSQL: its ``seq``;
Redis: a hash of the entry's name) and per message (keyed by its ``seq``), and a change counter
and log for each: every write that adds, replaces or drops a vector (a put,
an upsert that changes an entry's content, a delete, a prune) logs
``(namespace, key)`` (messages: the seq) under the next value of the
counter. Searching, loading and replaying that log are the one
:class:`~engram.search.vector.VectorEngine`; the two mixins here only turn a
backend's primitives into its :class:`~engram.search.vector.VectorRows`.
Message vectors get an engine of their own over one namespace
(:data:`~engram.search.vector.MESSAGES`), so the two indexes of a store
never mix; a session/user scope becomes the ``allowed`` keys of that scope.

A backend implements, for entries (:class:`LoggedVectors`):

* ``_vl_head() -> (newest, oldest)``: the change counter's value and the
  oldest change still logged (None when the log is empty).
* ``_vl_changes(after, upto) -> [(namespace, key)]``: what changed in ``(after, upto]``.
* ``_vl_vectors(namespace, keys) -> [(key, float32 bytes)]`` (``keys=None``: all).
* ``_vl_namespaces() -> [namespace]``: namespaces holding vectors.
* ``_vl_allowed(namespace, metadata, now) -> [key]``: keys of the live
  entries of a namespace that match ``metadata``.
* ``_vl_entries(keys, now) -> {key: Entry}``: the live entries of those keys.
* ``_vl_count(namespace) -> int``: vectors stored (``None``: in all namespaces).

and its own ``get_vectors``, ``vectors_by_hash``, ``entries_without_vectors``,
``_put_entries_and_vectors(entries, vectors, now, model)`` (both in one write)
and ``clear_vectors`` (which calls :meth:`LoggedVectors._vl_forget`), and may
give the engine a graph hook (``_vector_graphs``: SQLite's graph files); for
messages (:class:`LoggedMessageVectors`): ``_mv_head``, ``_mv_changes(after,
upto) -> [seq]``, ``_mv_vectors(seqs)``, ``_mv_scope(session_id, user_id) ->
[seq]``, ``_mv_messages(seqs) -> {seq: Message}``, ``_mv_count()``, and
``clear_vectors`` calls :meth:`LoggedMessageVectors._mv_forget`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from engram.errors import ConfigError
from engram.models import Entry, Message
from engram.search.vector import (
    CHANGE_LOG_KEEP,
    DEFAULT_EXACT_MAX,
    MESSAGE_EXACT_MAX,
    MESSAGES,
    FunctionRows,
    GraphHook,
    VectorEngine,
    from_blob,
    to_blob,
)
from engram.stores.base import MetadataFilter, VectorItem, VectorModel

__all__ = ["CHANGE_LOG_KEEP", "LoggedMessageVectors", "LoggedVectors", "from_blob", "model_mismatch", "to_blob"]


def model_mismatch(url: str, recorded: VectorModel, model: VectorModel) -> ConfigError:
    """The error of writing vectors of ``model`` into a store that holds ``recorded``'s."""
    return ConfigError(
        f"{url} holds vectors of {recorded.name} ({recorded.dimensions} dimensions), not {model.name} "
        f"({model.dimensions}): run `engram reindex` to re-embed every entry with the configured embedder"
    )


class LoggedVectors:
    """``search_vector`` and ``count_vectors`` over a server-side vector table and change log."""

    vector_exact_max: int = DEFAULT_EXACT_MAX

    def _vector_engine(self) -> VectorEngine:
        engine = self.__dict__.get("_entry_vector_engine")
        if engine is None:
            rows = FunctionRows(self._vl_head, self._vl_changes, self._vl_vectors)
            engine = self.__dict__.setdefault(
                "_entry_vector_engine", VectorEngine(rows, graphs=self._vector_graphs())
            )
        engine.exact_max = self.vector_exact_max  # set on the store after it opened
        return engine

    def _vector_graphs(self) -> GraphHook | None:
        """Where the engine saves and loads HNSW graphs (none here: each process builds its own)."""
        return None

    def _vl_forget(self) -> None:
        """Drop every loaded index (after ``clear_vectors``)."""
        self._vector_engine().forget()

    def count_vectors(self, namespace: str | None) -> int:
        return self._vl_count(namespace)

    def put_entries_with_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], *, now: datetime, model: VectorModel
    ) -> list[Entry]:
        if not vectors:
            return self.put_entries(entries, now=now)  # nothing to join the entries to: the plain write
        return self._put_entries_and_vectors(entries, vectors, now, model)

    def search_vector(
        self, vector: np.ndarray, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        engine = self._vector_engine()
        want = limit + 8  # a few spare for entries that expired since
        with engine.lock:
            names = [namespace] if namespace is not None else self._vl_namespaces()
            allowed = (lambda ns: self._vl_allowed(ns, metadata, now)) if metadata else None
            ranked = engine.search(vector, names, want, allowed=allowed)
        if not ranked:
            return []
        entries = self._vl_entries([k for k, _ in ranked], now)
        return [(entries[k], s) for k, s in ranked if k in entries][:limit]

    # Provided by the backend (see the module docstring).
    put_entries: Callable[..., list[Entry]]
    _put_entries_and_vectors: Callable[[Sequence[Entry], Sequence[VectorItem], datetime, VectorModel], list[Entry]]
    _vl_head: Callable[[], tuple[int, int | None]]
    _vl_changes: Callable[[int, int], list[tuple[str, int]]]
    _vl_vectors: Callable[[str, Sequence[int] | None], list[tuple[int, bytes]]]
    _vl_namespaces: Callable[[], list[str]]
    _vl_allowed: Callable[[str, MetadataFilter, datetime], list[int]]
    _vl_entries: Callable[[Sequence[int], datetime], dict[int, Entry]]
    _vl_count: Callable[[str | None], int]


class LoggedMessageVectors:
    """``search_message_vectors`` and ``count_message_vectors`` over a server-side log (see above)."""

    def _message_engine(self) -> VectorEngine:
        engine = self.__dict__.get("_message_vector_engine")
        if engine is None:
            rows = FunctionRows(
                self._mv_head,
                lambda after, upto: [(MESSAGES, seq) for seq in self._mv_changes(after, upto)],
                lambda _, seqs: self._mv_vectors(seqs),
            )
            engine = self.__dict__.setdefault(
                "_message_vector_engine", VectorEngine(rows, exact_max=MESSAGE_EXACT_MAX)
            )
        return engine

    def _mv_forget(self) -> None:
        """Drop the loaded message index (after ``clear_vectors``)."""
        self._message_engine().forget()

    def count_message_vectors(self) -> int:
        return self._mv_count()

    def search_message_vectors(
        self, vector: Any, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        scoped = session_id is not None or user_id is not None
        allowed = (lambda _: self._mv_scope(session_id, user_id)) if scoped else None
        ranked = self._message_engine().search(vector, [MESSAGES], limit + 8, allowed=allowed)
        if not ranked:
            return []
        messages = self._mv_messages([k for k, _ in ranked])
        return [(messages[k], s) for k, s in ranked if k in messages][:limit]

    # Provided by the backend (see the module docstring).
    _mv_head: Callable[[], tuple[int, int | None]]
    _mv_changes: Callable[[int, int], list[int]]
    _mv_vectors: Callable[[Sequence[int] | None], list[tuple[int, bytes]]]
    _mv_scope: Callable[[str | None, str | None], list[int]]
    _mv_messages: Callable[[Sequence[int]], dict[int, Message]]
    _mv_count: Callable[[], int]
