"""Vector storage of the SQLite backend (mixed into ``SQLiteStore``): SQL, primitives, graph files.

Vectors live in ``entry_vectors`` (float32 BLOBs keyed by the entry's
rowid); every change to it is logged by triggers in ``vector_changes``.
Searches run on the one vector engine (:mod:`engram.stores._vector_log`,
:mod:`engram.search.vector`): an index per namespace, loaded on first use
and kept for the life of the store, that takes the changes logged since it
last looked (by any process) before each search.

A namespace big enough for an HNSW graph has it saved in ``<db>.vectors/``
(:mod:`engram.stores.sqlite.vector_files`) with the sequence number it reflects,
through the engine's graph hook (:class:`GraphFiles`): a new process loads
the graph, replays only the changes logged since, and saves it again once it
has applied enough of them (or when closed). Bulk writes (``store_many``,
import, reindex, copy) bring a big namespace's graph up to date as they go,
so the build is paid by the bulk job, not by the first search after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from engram._time import to_iso
from engram.models import Entry
from engram.search.vector import CHANGE_LOG_KEEP, VectorEngine, VectorIndex, ann_available, from_blob, to_blob
from engram.stores._sql_rows import SQLITE_ROWS
from engram.stores._vector_log import LoggedVectors, model_mismatch
from engram.stores.base import MetadataFilter, VectorItem, VectorModel
from engram.stores.sqlite import sql as _sql
from engram.stores.sqlite.vector_files import VectorFiles, save_threshold
from engram.stores.sqlite.vector_tables import ENTRY_VECTORS, chunks, read_in

_entry = SQLITE_ROWS.entry
_AFTER = SQLITE_ROWS.entry_width  # the first column a query selects after an entry's

__all__ = ["BULK_SYNC", "CHANGE_LOG_KEEP", "GraphFiles", "SQLiteVectors"]

# A write of at least this many vectors into one namespace brings its HNSW
# graph up to date right away (when the namespace is big enough for one):
# store_many, import and copy write 1000 at a time, reindex 4 embedding
# batches (256 by default).
BULK_SYNC = 256
_blob = to_blob
_vec = from_blob


_PUT_VECTORS = (
    "INSERT INTO entry_vectors (rowid, namespace, content_hash, vector)"
    " SELECT e.rowid, ?, ?, ? FROM entries e"
    " WHERE e.namespace = ? AND e.key = ? AND e.content = ? AND e.context IS ?"
    " ON CONFLICT (rowid) DO UPDATE SET content_hash = excluded.content_hash, vector = excluded.vector"
)


class GraphFiles:
    """The engine's graph hook of a SQLite store: HNSW graphs saved in ``<db>.vectors/``."""

    def __init__(self, backend: SQLiteVectors):
        self.backend = backend

    def load(self, engine: VectorEngine, namespace: str, dimensions: int) -> VectorIndex | None:
        """The namespace's saved HNSW graph brought up to the engine's sequence number, or None."""
        backend = self.backend
        files = backend._vector_files()
        if files is None or not ann_available() or not files.versions(namespace):
            return None
        model = backend.vector_model()
        if model is None or model.dimensions != dimensions:
            return None
        seen = engine.seq or 0
        newest, oldest = engine.rows.head()
        loaded = files.load(namespace, model, exact_max=engine.exact_max, max_hwm=newest)
        if loaded is None:
            return None
        index, hwm = loaded
        if hwm < seen:
            if oldest is None or oldest > hwm + 1:
                return None  # the log no longer reaches back to the graph's mark: rebuild
            changed = {key for ns, key in engine.rows.changes(hwm, seen) if ns == namespace}
            engine.apply(namespace, index, sorted(changed))
        # Cheap sanity check: as many live vectors as the database holds, unless it changed meanwhile.
        count, now = backend._read(
            "counting vectors",
            "SELECT (SELECT count(*) FROM entry_vectors WHERE namespace = ?), (SELECT max(seq) FROM vector_changes)",
            (namespace,),
        )[0]
        if (now or 0) == max(seen, hwm) and count != len(index):
            return None
        if index.changes >= save_threshold(len(index)):
            backend._save_index(namespace, index)
        return index

    def built(self, engine: VectorEngine, namespace: str, index: VectorIndex) -> None:
        files = self.backend._vector_files()
        if index.uses_ann:
            self.backend._save_index(namespace, index)  # built once, not by every process
        elif files is not None and files.versions(namespace):
            files.remove(namespace)  # small again (or unreadable): nothing worth keeping

    def refreshed(self, engine: VectorEngine, namespace: str, index: VectorIndex) -> None:
        if index.uses_ann and index.changes >= save_threshold(len(index)):
            self.backend._save_index(namespace, index)
        elif not index.uses_ann and index.changes:
            files = self.backend._vector_files()
            if files is not None and files.versions(namespace):
                files.remove(namespace)  # shrank below the size (a namespace deleted): no graph to keep


class SQLiteVectors(LoggedVectors):
    """The VECTOR primitives of ``SQLiteStore``; uses its ``_write``/``_read``."""

    _read: Any
    _write: Any
    _local: Any
    put_entries: Any
    path: Any
    url: str

    def _vector_graphs(self) -> GraphFiles:
        return GraphFiles(self)

    def _vector_state(self) -> dict[str, Any]:
        """The engine's state: ``indexes`` (namespace -> loaded index), ``seq``, ``lock``."""
        return vars(self._vector_engine())

    def _vector_files(self) -> VectorFiles | None:
        """Where this database's HNSW graphs are saved (None before schema 4)."""
        files = self.__dict__.get("_graph_files")
        if files is None:
            rows = self._read("reading the store id", "SELECT value FROM engram_meta WHERE key = 'store_id'")
            if not rows:
                return None
            files = self.__dict__.setdefault("_graph_files", VectorFiles(Path(f"{self.path}.vectors"), rows[0][0]))
        return files

    # -- model ---------------------------------------------------------------
    def vector_model(self) -> VectorModel | None:
        rows = self._read("reading the vector model", "SELECT name, dimensions FROM vector_model")
        return VectorModel(rows[0][0], rows[0][1]) if rows else None

    def _check_model(self, conn: Any, model: VectorModel) -> None:
        row = conn.execute("SELECT name, dimensions FROM vector_model").fetchone()
        if row is None:
            conn.execute("INSERT INTO vector_model (id, name, dimensions) VALUES (1, ?, ?)", (model.name, model.dimensions))
        elif (row[0], row[1]) != (model.name, model.dimensions):
            raise model_mismatch(self.url, VectorModel(row[0], row[1]), model)

    # -- writes ----------------------------------------------------------------
    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        stored = self._insert_vectors(items, model)
        self._after_vector_write(items, stored, model)
        return stored

    def _put_entries_and_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], now: datetime, model: VectorModel
    ) -> list[Entry]:
        with self._write("storing entries with their vectors"):
            stored = self.put_entries(entries, now=now)  # joins this transaction
            n = self._insert_vectors(vectors, model)
        self._after_vector_write(vectors, n, model)  # after the commit: the graphs only see committed changes
        return stored

    def _insert_vectors(self, items: Sequence[VectorItem], model: VectorModel) -> int:
        rows = [
            (i.namespace, i.digest, _blob(i.vector), i.namespace, i.key, i.content, i.context) for i in items
        ]
        with self._write(f"storing {len(items)} vectors") as conn:
            self._check_model(conn, model)
            # Only where the content and context are still what was embedded: a concurrent
            # update of the entry must not get a vector of the old text.
            return ENTRY_VECTORS.store(conn, _PUT_VECTORS, rows, CHANGE_LOG_KEEP)

    def _after_vector_write(self, items: Sequence[VectorItem], stored: int, model: VectorModel) -> None:
        if getattr(self._local, "writing", False):
            # Inside a transaction (Store.transaction): the graphs may only see committed
            # vectors, so the sync waits for the commit (_after_commit).
            held = self._local.__dict__.setdefault("after_commit", [])
            held.append((items, stored, model))
            return
        if stored >= BULK_SYNC and ann_available():
            for ns, n in Counter(i.namespace for i in items).items():
                if n >= BULK_SYNC:
                    self._sync_after_write(ns, model.dimensions)

    def _after_commit(self) -> None:
        held = self._local.__dict__.pop("after_commit", [])
        for items, stored, model in held:
            self._after_vector_write(items, stored, model)

    def _sync_after_write(self, namespace: str, dimensions: int) -> None:
        """Bring a big namespace's HNSW graph up to date after a bulk write (build it when it crossed the size)."""
        engine = self._vector_engine()
        with engine.lock:
            if namespace not in engine.indexes:
                files = self._vector_files()
                if files is None or not files.versions(namespace):
                    if ENTRY_VECTORS.count(self._read, [namespace]) <= self.vector_exact_max:
                        return  # exact: loads in milliseconds when first searched
            engine.refresh(notify=False)
            index = engine.index(namespace, dimensions)
            # Saved now only when much has changed since; otherwise when closed.
            if index.uses_ann and index.changes >= max(save_threshold(len(index)), len(index) // 4):
                self._save_index(namespace, index)

    def _save_index(self, namespace: str, index: VectorIndex) -> None:
        files = self._vector_files()
        model = self.vector_model()
        if files is not None and model is not None and model.dimensions == index.dimensions:
            files.save(namespace, index, self._vector_engine().seq or 0, model)

    def save_vector_indexes(self) -> None:
        """Save the HNSW graphs that took enough changes since they were loaded or saved (on close)."""
        engine = self._vector_engine()
        with engine.lock:
            if engine.seq is None:
                return
            for ns, index in list(engine.indexes.items()):
                if index.uses_ann and index.changes >= save_threshold(len(index)):
                    self._save_index(ns, index)

    def clear_vectors(self) -> int:
        with self._write("dropping vectors") as conn:
            n = ENTRY_VECTORS.clear(conn)
            conn.execute("DELETE FROM vector_model")
        engine = self._vector_engine()
        with engine.lock:
            self._vl_forget()
            files = self._vector_files()
            if files is not None:
                files.remove()
        return n

    # -- reads -------------------------------------------------------------------
    def get_vectors(self, idents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        found: dict[tuple[str, str], np.ndarray] = {}
        for part in chunks(list(idents), 250):
            where = " OR ".join("(e.namespace = ? AND e.key = ?)" for _ in part)
            params = [x for ident in part for x in ident]
            rows = self._read(
                "reading vectors",
                f"SELECT e.namespace, e.key, v.vector FROM entries e JOIN entry_vectors v ON v.rowid = e.rowid WHERE {where}",
                params,
            )
            found.update({(r[0], r[1]): _vec(r[2]).copy() for r in rows})
        return found

    def vectors_by_hash(self, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        sql = "SELECT content_hash, vector FROM entry_vectors WHERE content_hash IN ({marks})"
        return {bytes(r[0]): _vec(r[1]).copy() for r in read_in(self._read, "reading vectors", sql, list(set(digests)))}

    def entries_without_vectors(self, namespace: str | None, *, batch_size: int = 256) -> Iterator[list[Entry]]:
        last = 0
        scope = "" if namespace is None else " AND e.namespace = ?"
        while True:
            params: list[Any] = [last] + ([] if namespace is None else [namespace]) + [batch_size]
            rows = self._read(
                "reading entries to embed",
                f"SELECT {_sql.ENTRY_COLUMNS}, e.rowid FROM entries e"
                f" WHERE e.rowid > ?{scope} AND NOT EXISTS (SELECT 1 FROM entry_vectors v WHERE v.rowid = e.rowid)"
                " ORDER BY e.rowid LIMIT ?",
                params,
            )
            if not rows:
                return
            yield [_entry(r) for r in rows]
            last = rows[-1][_AFTER]

    # -- the primitives of LoggedVectors ---------------------------------------------
    def _vl_head(self) -> tuple[int, int | None]:
        return ENTRY_VECTORS.head(self._read)

    def _vl_changes(self, after: int, upto: int) -> list[tuple[str, int]]:
        return [
            (r[0], r[1])
            for r in self._read(
                "reading vector changes",
                "SELECT DISTINCT namespace, entry_rowid FROM vector_changes WHERE seq > ? AND seq <= ?",
                (after, upto),
            )
        ]

    def _vl_vectors(self, namespace: str, keys: Sequence[int] | None) -> list[tuple[int, bytes]]:
        return ENTRY_VECTORS.vectors(self._read, keys, [namespace])

    def _vl_namespaces(self) -> list[str]:
        return [r[0] for r in self._read("listing namespaces", "SELECT DISTINCT namespace FROM entry_vectors")]

    def _vl_allowed(self, namespace: str, metadata: MetadataFilter, now: datetime) -> list[int]:
        clause, params = _sql.metadata_conditions(metadata)
        rows = self._read(
            "filtering by metadata",
            f"SELECT e.rowid FROM entries e WHERE e.namespace = ? AND {_sql.LIVE} AND {clause}",
            [namespace, to_iso(now), *params],
        )
        return [r[0] for r in rows]

    def _vl_entries(self, keys: Sequence[int], now: datetime) -> dict[int, Entry]:
        sql = f"SELECT {_sql.ENTRY_COLUMNS}, e.rowid FROM entries e WHERE e.rowid IN ({{marks}}) AND {_sql.LIVE}"
        return {r[_AFTER]: _entry(r) for r in read_in(self._read, "reading entries", sql, keys, after=[to_iso(now)])}

    def _vl_count(self, namespace: str | None) -> int:
        if namespace is not None:
            loaded = self._vector_engine().count(namespace)
            if loaded is not None:
                return loaded
            return ENTRY_VECTORS.count(self._read, [namespace])
        return ENTRY_VECTORS.count(self._read)
