"""The SQL of the database blob store's rows, built once for SQLite and PostgreSQL.

Pure functions of a :class:`BlobSQL` (table names, placeholder, how a time and
the ref column travel) returning ``(sql, params)``; ``stores/sqlite/blobs.py``
and ``stores/postgres/blobs.py`` run them with their driver. The reads are the
same for both (:class:`BlobRowReads`); each backend writes in its own transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engram.blobs.base import BlobQuery
from engram.models import BlobRef

Query = tuple[str, list[Any]]


@dataclass(frozen=True)
class BlobSQL:
    blobs: str  # the table of refs
    chunks: str  # the table of chunks
    p: str  # the driver's placeholder
    time: Callable[[datetime], Any]  # a time as the driver binds it
    ref: str  # the ref column as text

    def insert(self, project: str, ref: BlobRef) -> Query:
        """Insert a ref unless the blob is there (then no row comes back / rowcount 0)."""
        p = self.p
        sql = (
            f"INSERT INTO {self.blobs} (project, id, size, source, created_at, ref)"
            f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING RETURNING id"
        )
        return (
            sql,
            [project, ref.id, ref.size, ref.source, self.time(ref.created_at), ref.model_dump_json()],
        )

    def insert_chunk(self) -> str:
        p = self.p
        return f"INSERT INTO {self.chunks} (project, blob_id, n, data) VALUES ({p}, {p}, {p}, {p})"

    def get_ref(self, project: str, blob_id: str) -> Query:
        return f"SELECT {self.ref} FROM {self.blobs} WHERE project = {self.p} AND id = {self.p}", [project, blob_id]

    def get_chunk(self, project: str, blob_id: str, n: int) -> Query:
        p = self.p
        return (
            f"SELECT data FROM {self.chunks} WHERE project = {p} AND blob_id = {p} AND n = {p}",
            [project, blob_id, n],
        )

    def delete(self, project: str, blob_id: str) -> Query:
        return f"DELETE FROM {self.blobs} WHERE project = {self.p} AND id = {self.p}", [project, blob_id]

    def list(self, project: str, query: BlobQuery) -> Query:
        p = self.p
        sql, params = f"SELECT {self.ref} FROM {self.blobs} WHERE project = {p}", [project]
        if query.source is not None:
            sql += f" AND source = {p}"
            params.append(query.source)
        if query.older_than is not None:
            sql += f" AND created_at < {p}"
            params.append(self.time(query.older_than))
        sql += f" ORDER BY created_at DESC, id DESC LIMIT {p} OFFSET {p}"
        return sql, [*params, query.limit, query.offset]

    def totals(self, project: str) -> Query:
        return f"SELECT count(*), coalesce(sum(size), 0) FROM {self.blobs} WHERE project = {self.p}", [project]


class BlobRowReads:
    """The reading ``BlobRows`` primitives of a database store over its ``blob_sql``."""

    blob_sql: BlobSQL

    def _blob_read(self, what: str, sql: str, params: list[Any]) -> list[Any]:
        """The rows of a query, by the backend's driver."""
        raise NotImplementedError

    def blob_rows_ref(self, project: str, blob_id: str) -> BlobRef | None:
        rows = self._blob_read("reading a blob", *self.blob_sql.get_ref(project, blob_id))
        return BlobRef.model_validate_json(rows[0][0]) if rows else None

    def blob_rows_chunk(self, project: str, blob_id: str, n: int) -> bytes | None:
        rows = self._blob_read("reading a blob", *self.blob_sql.get_chunk(project, blob_id, n))
        return bytes(rows[0][0]) if rows else None

    def blob_rows_list(self, project: str, query: BlobQuery) -> list[BlobRef]:
        rows = self._blob_read("listing blobs", *self.blob_sql.list(project, query))
        return [BlobRef.model_validate_json(r[0]) for r in rows]

    def blob_rows_totals(self, project: str) -> tuple[int, int]:
        count, size = self._blob_read("counting blobs", *self.blob_sql.totals(project))[0]
        return count, int(size)
