"""Blob rows for the database blob store (``engram.blobs.database``), mixed into ``PostgresStore``.

``engram_blobs`` holds one row per blob (its ref as JSON, plus the columns
lists filter on); ``engram_blob_chunks`` its bytes in ``bytea`` chunks,
removed with it (foreign key cascade). A blob and its chunks are inserted in
one transaction; two processes putting the same bytes insert it once
(``ON CONFLICT DO NOTHING`` on the primary key).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engram.models import BlobRef
from engram.stores._blob_sql import BlobRowReads, BlobSQL

# Migration 7 of engram.stores.postgres.sql.MIGRATIONS.
BLOB_SCHEMA = """
CREATE TABLE engram_blobs (
    project    text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    size       bigint NOT NULL,
    source     text NOT NULL,
    created_at timestamptz NOT NULL,
    ref        json NOT NULL,
    PRIMARY KEY (project, id)
);
CREATE INDEX engram_blobs_by_time ON engram_blobs (project, created_at DESC, id DESC);
CREATE TABLE engram_blob_chunks (
    project text COLLATE "C" NOT NULL,
    blob_id text COLLATE "C" NOT NULL,
    n       integer NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (project, blob_id, n),
    FOREIGN KEY (project, blob_id) REFERENCES engram_blobs (project, id) ON DELETE CASCADE
);
"""


SQL = BlobSQL(blobs="engram_blobs", chunks="engram_blob_chunks", p="%s", time=lambda t: t, ref="ref::text")


class PostgresBlobRows(BlobRowReads):
    """The ``BlobRows`` primitives of ``PostgresStore``; uses its ``_conn``/``_run``/``_fetch``."""

    blob_sql = SQL
    _conn: Any
    _run: Any
    _fetch: Any

    def _blob_read(self, what: str, sql: str, params: list[Any]) -> list[Any]:
        return self._fetch(what, sql, params)

    def blob_rows_insert(self, project: str, ref: BlobRef, chunks: Iterable[bytes]) -> bool:
        with self._conn(f"storing blob {ref.id}") as conn, conn.transaction():
            if self._run(conn, *SQL.insert(project, ref)).fetchone() is None:
                return False
            with conn.cursor() as cursor:
                for n, chunk in enumerate(chunks):
                    cursor.execute(SQL.insert_chunk(), (project, ref.id, n, bytes(chunk)))
        return True

    def blob_rows_delete(self, project: str, blob_id: str) -> bool:
        with self._conn(f"deleting blob {blob_id}") as conn:
            return self._run(conn, *SQL.delete(project, blob_id)).rowcount > 0
