"""Blob rows for the database blob store (``engram.blobs.database``), mixed into ``SQLiteStore``.

``blobs`` holds one row per blob (its ref as JSON, plus the columns lists
filter on); ``blob_chunks`` its bytes in chunks, removed with it (foreign key
cascade). A blob and its chunks are inserted in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engram._time import to_iso
from engram.models import BlobRef
from engram.stores._blob_sql import BlobRowReads, BlobSQL

# Migration 8 of engram.stores.sqlite.schema.MIGRATIONS.
BLOB_SCHEMA = """
CREATE TABLE blobs (
    project    TEXT NOT NULL,
    id         TEXT NOT NULL,  -- the SHA-256 of the bytes, hex
    size       INTEGER NOT NULL,
    source     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ref        TEXT NOT NULL,  -- the BlobRef, JSON
    PRIMARY KEY (project, id)
);
CREATE INDEX blobs_by_time ON blobs (project, created_at DESC, id DESC);
CREATE TABLE blob_chunks (
    project TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    n       INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (project, blob_id, n),
    FOREIGN KEY (project, blob_id) REFERENCES blobs (project, id) ON DELETE CASCADE
);
"""


SQL = BlobSQL(blobs="blobs", chunks="blob_chunks", p="?", time=to_iso, ref="ref")


class SQLiteBlobRows(BlobRowReads):
    """The ``BlobRows`` primitives of ``SQLiteStore``; uses its ``_read``/``_write``."""

    blob_sql = SQL
    _read: Any
    _write: Any

    def _blob_read(self, what: str, sql: str, params: list[Any]) -> list[Any]:
        return self._read(what, sql, params)

    def blob_rows_insert(self, project: str, ref: BlobRef, chunks: Iterable[bytes]) -> bool:
        with self._write(f"storing blob {ref.id}") as conn:
            if not conn.execute(*SQL.insert(project, ref)).fetchall():
                return False
            conn.executemany(SQL.insert_chunk(), ((project, ref.id, n, chunk) for n, chunk in enumerate(chunks)))
        return True

    def blob_rows_delete(self, project: str, blob_id: str) -> bool:
        with self._write(f"deleting blob {blob_id}") as conn:
            return conn.execute(*SQL.delete(project, blob_id)).rowcount > 0
