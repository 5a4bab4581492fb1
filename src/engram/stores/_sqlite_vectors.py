"""Vector storage and search for the SQLite backend (mixed into ``SQLiteStore``).

Vectors live in ``entry_vectors`` (float32 BLOBs keyed by the entry's rowid);
searches run on an in-memory :class:`~engram.search.vector.VectorIndex` per
namespace, loaded on first use and kept for the life of the store. Every
change to ``entry_vectors`` is logged by triggers in ``vector_changes``;
before each search the store reads the log past the last sequence number it
has seen (one indexed lookup when nothing changed) and applies just those
changes, so writes from other processes on the same file are visible to the
next search.

A namespace big enough for an HNSW graph has it saved in ``<db>.vectors/``
(:mod:`engram.stores._vector_files`) with the sequence number it reflects:
a new process loads the graph, replays only the changes logged since, and
saves it again once it has applied enough of them (or when closed). Bulk
writes (``store_many``, import, reindex, copy) bring a big namespace's graph
up to date as they go, so the build is paid by the bulk job, not by the
first search after it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from engram._time import to_iso
from engram.embeddings.cache import content_hash
from engram.errors import ConfigError
from engram.models import Entry
from engram.search.vector import DEFAULT_EXACT_MAX, VectorIndex, ann_available, merge_top
from engram.stores import _sql
from engram.stores._vector_files import VectorFiles, save_threshold
from engram.stores.base import MetadataFilter, VectorItem, VectorModel

# Keep this many change-log rows; a process further behind reloads from scratch.
CHANGE_LOG_KEEP = 100_000
_CHUNK = 500  # bound parameters per IN (...) list
# A write of at least this many vectors into one namespace brings its HNSW
# graph up to date right away (when the namespace is big enough for one):
# store_many, import and copy write 1000 at a time, reindex 4 embedding
# batches (256 by default).
BULK_SYNC = 256


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def _vec(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SQLiteVectors:
    """The VECTOR primitives of ``SQLiteStore``; uses its ``_write``/``_read``/``_entry``."""

    vector_exact_max: int = DEFAULT_EXACT_MAX

    def _vector_state(self) -> dict[str, Any]:
        state = self.__dict__.get("_vstate")
        if state is None:
            state = self.__dict__.setdefault(
                "_vstate", {"indexes": {}, "seq": None, "files": None, "lock": threading.RLock()}
            )
        return state

    def _vector_files(self) -> VectorFiles | None:
        """Where this database's HNSW graphs are saved (None before schema 4)."""
        state = self._vector_state()
        if state["files"] is None:
            rows = self._read("reading the store id", "SELECT value FROM engram_meta WHERE key = 'store_id'")  # type: ignore[attr-defined]
            if not rows:
                return None
            state["files"] = VectorFiles(Path(f"{self.path}.vectors"), rows[0][0])  # type: ignore[attr-defined]
        return state["files"]

    # -- model ---------------------------------------------------------------
    def vector_model(self) -> VectorModel | None:
        rows = self._read("reading the vector model", "SELECT name, dimensions FROM vector_model")  # type: ignore[attr-defined]
        return VectorModel(rows[0][0], rows[0][1]) if rows else None

    def _check_model(self, conn: Any, model: VectorModel) -> None:
        row = conn.execute("SELECT name, dimensions FROM vector_model").fetchone()
        if row is None:
            conn.execute("INSERT INTO vector_model (id, name, dimensions) VALUES (1, ?, ?)", (model.name, model.dimensions))
        elif (row[0], row[1]) != (model.name, model.dimensions):
            raise ConfigError(
                f"{self.url} holds vectors of {row[0]} ({row[1]} dimensions), not {model.name} "  # type: ignore[attr-defined]
                f"({model.dimensions}): run `engram reindex` to re-embed every entry with the configured embedder"
            )

    # -- writes ----------------------------------------------------------------
    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        stored = self._insert_vectors(items, model)
        self._after_vector_write(items, stored, model)
        return stored

    def put_entries_with_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], *, now: datetime, model: VectorModel
    ) -> list[Entry]:
        if not vectors:
            return self.put_entries(entries, now=now)  # type: ignore[attr-defined]
        with self._write("storing entries with their vectors"):  # type: ignore[attr-defined]
            stored = self.put_entries(entries, now=now)  # type: ignore[attr-defined]  (joins this transaction)
            n = self._insert_vectors(vectors, model)
        self._after_vector_write(vectors, n, model)  # after the commit: the graphs only see committed changes
        return stored

    def _insert_vectors(self, items: Sequence[VectorItem], model: VectorModel) -> int:
        rows = [
            (i.namespace, content_hash(i.content), _blob(i.vector), i.namespace, i.key, i.content) for i in items
        ]
        with self._write(f"storing {len(items)} vectors") as conn:  # type: ignore[attr-defined]
            self._check_model(conn, model)
            # Only where the content is still what was embedded: a concurrent
            # update of the entry must not get a vector of the old text.
            stored = conn.executemany(
                "INSERT INTO entry_vectors (rowid, namespace, content_hash, vector)"
                " SELECT e.rowid, ?, ?, ? FROM entries e WHERE e.namespace = ? AND e.key = ? AND e.content = ?"
                " ON CONFLICT (rowid) DO UPDATE SET content_hash = excluded.content_hash, vector = excluded.vector",
                rows,
            ).rowcount
            conn.execute(
                "DELETE FROM vector_changes WHERE seq <= (SELECT max(seq) FROM vector_changes) - ?", (CHANGE_LOG_KEEP,)
            )
        return stored

    def _after_vector_write(self, items: Sequence[VectorItem], stored: int, model: VectorModel) -> None:
        if getattr(self._local, "writing", False):  # type: ignore[attr-defined]
            # Inside a transaction (Store.transaction): the graphs may only see committed
            # vectors, so the sync waits for the commit (_after_commit).
            held = self._local.__dict__.setdefault("after_commit", [])  # type: ignore[attr-defined]
            held.append((items, stored, model))
            return
        if stored >= BULK_SYNC and ann_available():
            for ns, n in Counter(i.namespace for i in items).items():
                if n >= BULK_SYNC:
                    self._sync_after_write(ns, model.dimensions)

    def _after_commit(self) -> None:
        held = self._local.__dict__.pop("after_commit", [])  # type: ignore[attr-defined]
        for items, stored, model in held:
            self._after_vector_write(items, stored, model)

    def _sync_after_write(self, namespace: str, dimensions: int) -> None:
        """Bring a big namespace's HNSW graph up to date after a bulk write (build it when it crossed the size)."""
        state = self._vector_state()
        with state["lock"]:
            if namespace not in state["indexes"]:
                files = self._vector_files()
                if files is None or not files.versions(namespace):
                    n = self._read(  # type: ignore[attr-defined]
                        "counting vectors", "SELECT count(*) FROM entry_vectors WHERE namespace = ?", (namespace,)
                    )[0][0]
                    if n <= self.vector_exact_max:
                        return  # exact: loads in milliseconds when first searched
            self._refresh(save=False)
            index = self._index(namespace, dimensions)
            # Saved now only when much has changed since; otherwise when closed.
            if index.uses_ann and index.changes >= max(save_threshold(len(index)), len(index) // 4):
                self._save_index(namespace, index)

    def _save_index(self, namespace: str, index: VectorIndex) -> None:
        files = self._vector_files()
        model = self.vector_model()
        if files is not None and model is not None and model.dimensions == index.dimensions:
            files.save(namespace, index, self._vector_state()["seq"], model)

    def save_vector_indexes(self) -> None:
        """Save the HNSW graphs that took enough changes since they were loaded or saved (on close)."""
        state = self._vector_state()
        with state["lock"]:
            if state["seq"] is None:
                return
            for ns, index in list(state["indexes"].items()):
                if index.uses_ann and index.changes >= save_threshold(len(index)):
                    self._save_index(ns, index)

    def clear_vectors(self) -> int:
        with self._write("dropping vectors") as conn:  # type: ignore[attr-defined]
            n = conn.execute("SELECT count(*) FROM entry_vectors").fetchone()[0]
            conn.execute("DELETE FROM entry_vectors")
            conn.execute("DELETE FROM vector_model")
        state = self._vector_state()
        with state["lock"]:
            state["indexes"].clear()
            files = self._vector_files()
            if files is not None:
                files.remove()
        return n

    # -- reads -------------------------------------------------------------------
    def count_vectors(self, namespace: str | None) -> int:
        if namespace is None:
            rows = self._read("counting vectors", "SELECT count(*) FROM entry_vectors")  # type: ignore[attr-defined]
        else:
            state = self._vector_state()
            with state["lock"]:
                self._refresh()
                index = state["indexes"].get(namespace)
                if index is not None:
                    return len(index)
            rows = self._read(  # type: ignore[attr-defined]
                "counting vectors", "SELECT count(*) FROM entry_vectors WHERE namespace = ?", (namespace,)
            )
        return rows[0][0]

    def get_vectors(self, idents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        found: dict[tuple[str, str], np.ndarray] = {}
        for part in _chunks(list(idents), 250):
            where = " OR ".join("(e.namespace = ? AND e.key = ?)" for _ in part)
            params = [x for ident in part for x in ident]
            rows = self._read(  # type: ignore[attr-defined]
                "reading vectors",
                f"SELECT e.namespace, e.key, v.vector FROM entries e JOIN entry_vectors v ON v.rowid = e.rowid WHERE {where}",
                params,
            )
            found.update({(r[0], r[1]): _vec(r[2]).copy() for r in rows})
        return found

    def vectors_by_hash(self, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for part in _chunks(list(set(digests))):
            rows = self._read(  # type: ignore[attr-defined]
                "reading vectors",
                f"SELECT content_hash, vector FROM entry_vectors WHERE content_hash IN ({','.join('?' * len(part))})",
                list(part),
            )
            found.update({bytes(r[0]): _vec(r[1]).copy() for r in rows})
        return found

    def entries_without_vectors(self, namespace: str | None, *, batch_size: int = 256) -> Iterator[list[Entry]]:
        from engram.stores.sqlite import _entry

        last = 0
        scope = "" if namespace is None else " AND e.namespace = ?"
        while True:
            params: list[Any] = [last] + ([] if namespace is None else [namespace]) + [batch_size]
            rows = self._read(  # type: ignore[attr-defined]
                "reading entries to embed",
                f"SELECT {_sql.ENTRY_COLUMNS}, e.rowid FROM entries e"
                f" WHERE e.rowid > ?{scope} AND NOT EXISTS (SELECT 1 FROM entry_vectors v WHERE v.rowid = e.rowid)"
                " ORDER BY e.rowid LIMIT ?",
                params,
            )
            if not rows:
                return
            yield [_entry(r) for r in rows]
            last = rows[-1][8]

    # -- the in-memory indexes ---------------------------------------------------
    def _refresh(self, *, save: bool = True) -> None:
        """Apply changes logged since the last look (by any process) to the loaded indexes.

        With ``save``, a graph that took enough changes is saved again.
        """
        state = self._vector_state()
        seq = self._read("reading vector changes", "SELECT max(seq) FROM vector_changes")[0][0] or 0  # type: ignore[attr-defined]
        seen = state["seq"]
        if seen is not None and seq == seen:
            return
        if seen is None or not state["indexes"]:
            state["seq"] = seq
            state["indexes"].clear()
            return
        oldest = self._read("reading vector changes", "SELECT min(seq) FROM vector_changes")[0][0]  # type: ignore[attr-defined]
        if oldest is None or oldest > seen + 1 or seq < seen:
            state["indexes"].clear()  # fell behind the kept log (or the file was replaced): reload lazily
            state["seq"] = seq
            return
        changes = self._read(  # type: ignore[attr-defined]
            "reading vector changes",
            "SELECT DISTINCT namespace, entry_rowid FROM vector_changes WHERE seq > ? AND seq <= ?",
            (seen, seq),
        )
        by_namespace: dict[str, list[int]] = {}
        for ns, rowid in changes:
            if ns in state["indexes"]:
                by_namespace.setdefault(ns, []).append(rowid)
        for ns, rowids in by_namespace.items():
            self._apply(ns, state["indexes"][ns], rowids)
        state["seq"] = seq
        if save:
            for ns in by_namespace:
                index = state["indexes"][ns]
                if index.uses_ann and index.changes >= save_threshold(len(index)):
                    self._save_index(ns, index)
                elif (
                    not index.uses_ann and index.changes and (files := self._vector_files()) is not None
                    and files.versions(ns)
                ):
                    files.remove(ns)  # shrank below the size (a namespace deleted): no graph to keep

    def _apply(self, namespace: str, index: VectorIndex, rowids: Sequence[int]) -> None:
        """Make ``index`` hold the current vectors of ``rowids`` (or not hold them, when gone)."""
        current: dict[int, bytes] = {}
        for part in _chunks(list(rowids)):
            rows = self._read(  # type: ignore[attr-defined]
                "reading vectors",
                f"SELECT rowid, vector FROM entry_vectors WHERE namespace = ? AND rowid IN ({','.join('?' * len(part))})",
                [namespace, *part],
            )
            current.update({r[0]: r[1] for r in rows})
        index.remove([r for r in rowids if r not in current])
        if current:
            keys = list(current)
            index.upsert(keys, np.vstack([_vec(current[k]) for k in keys]))

    def _load_saved(self, namespace: str, dimensions: int) -> VectorIndex | None:
        """The namespace's saved HNSW graph brought up to the seen sequence number, or None."""
        files = self._vector_files()
        if files is None or not ann_available() or not files.versions(namespace):
            return None
        model = self.vector_model()
        if model is None or model.dimensions != dimensions:
            return None
        seen = self._vector_state()["seq"]
        newest, oldest = self._read(  # type: ignore[attr-defined]
            "reading vector changes", "SELECT max(seq), min(seq) FROM vector_changes"
        )[0]
        loaded = files.load(namespace, model, exact_max=self.vector_exact_max, max_hwm=newest or 0)
        if loaded is None:
            return None
        index, hwm = loaded
        if hwm < seen:
            if oldest is None or oldest > hwm + 1:
                return None  # the log no longer reaches back to the graph's mark: rebuild
            rows = self._read(  # type: ignore[attr-defined]
                "reading vector changes",
                "SELECT DISTINCT entry_rowid FROM vector_changes WHERE namespace = ? AND seq > ? AND seq <= ?",
                (namespace, hwm, seen),
            )
            self._apply(namespace, index, [r[0] for r in rows])
        # Cheap sanity check: as many live vectors as the database holds, unless it changed meanwhile.
        count, now = self._read(  # type: ignore[attr-defined]
            "counting vectors",
            "SELECT (SELECT count(*) FROM entry_vectors WHERE namespace = ?), (SELECT max(seq) FROM vector_changes)",
            (namespace,),
        )[0]
        if (now or 0) == max(seen, hwm) and count != len(index):
            return None
        return index

    def _index(self, namespace: str, dimensions: int) -> VectorIndex:
        state = self._vector_state()
        index = state["indexes"].get(namespace)
        if index is None or index.dimensions != dimensions:
            index = self._load_saved(namespace, dimensions)
            if index is None:
                rows = self._read(  # type: ignore[attr-defined]
                    "loading vectors", "SELECT rowid, vector FROM entry_vectors WHERE namespace = ?", (namespace,)
                )
                index = VectorIndex(dimensions, exact_max=self.vector_exact_max)
                if rows:
                    keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dimensions)
                    index.upsert(keys, matrix)
                files = self._vector_files()
                if index.uses_ann:
                    self._save_index(namespace, index)  # built once, not by every process
                elif files is not None and files.versions(namespace):
                    files.remove(namespace)  # small again (or unreadable): nothing worth keeping
            elif index.changes >= save_threshold(len(index)):
                self._save_index(namespace, index)
            state["indexes"][namespace] = index
        return index

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        namespace: str | None,
        metadata: MetadataFilter,
        limit: int,
        now: datetime,
    ) -> list[tuple[Entry, float]]:
        from engram.stores.sqlite import _entry

        state = self._vector_state()
        iso = to_iso(now)
        dimensions = len(vector)
        with state["lock"]:
            self._refresh()
            if namespace is None:
                names = [r[0] for r in self._read("listing namespaces", "SELECT DISTINCT namespace FROM entry_vectors")]  # type: ignore[attr-defined]
            else:
                names = [namespace]
            want = limit + 8  # a few spare for entries that expired since
            keys: list[np.ndarray] = []
            scores: list[np.ndarray] = []
            for ns in names:
                index = self._index(ns, dimensions)
                allowed = None
                if metadata:
                    clause, params = _sql.metadata_conditions(metadata)
                    rows = self._read(  # type: ignore[attr-defined]
                        "filtering by metadata",
                        f"SELECT e.rowid FROM entries e WHERE e.namespace = ? AND {_sql.LIVE} AND {clause}",
                        [ns, iso, *params],
                    )
                    allowed = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                k, s = index.search(vector, want, allowed=allowed)
                keys.append(k)
                scores.append(s)
        ranked = merge_top(keys, scores, want)
        if not ranked:
            return []
        entries: dict[int, Entry] = {}
        for part in _chunks([k for k, _ in ranked]):
            rows = self._read(  # type: ignore[attr-defined]
                "reading entries",
                f"SELECT {_sql.ENTRY_COLUMNS}, e.rowid FROM entries e"
                f" WHERE e.rowid IN ({','.join('?' * len(part))}) AND {_sql.LIVE}",
                [*part, iso],
            )
            entries.update({r[8]: _entry(r) for r in rows})
        return [(entries[k], s) for k, s in ranked if k in entries][:limit]
