"""Blobs in the database itself (``blob_store.type: database``), for small deployments.

A blob is one row of metadata and its bytes in 1 MiB chunk rows, written in
one transaction (so a blob is there whole or not at all). The rows live in the
Memory's own SQLite or PostgreSQL database: its store implements
:class:`BlobRows` (``stores/sqlite/blobs.py``, ``stores/postgres/blobs.py``).
Bytes are staged in a temp file while they are hashed, so the transaction
only lasts as long as writing them, never as long as a slow upload.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Protocol, runtime_checkable

from engram.blobs._input import CHUNK
from engram.blobs.base import BlobBackend, BlobQuery, Staging
from engram.errors import ConfigError
from engram.models import BlobRef

SPOOL_IN_MEMORY = 8 * CHUNK  # smaller blobs are staged in memory, bigger ones in a temp file


@runtime_checkable
class BlobRows(Protocol):
    """What a database store offers the database blob backend: rows in, rows out."""

    url: str

    def blob_rows_insert(self, project: str, ref: BlobRef, chunks: Iterable[bytes]) -> bool:
        """Insert the ref and its chunks in one transaction; False (nothing written) when the id is there."""
        ...

    def blob_rows_ref(self, project: str, blob_id: str) -> BlobRef | None: ...

    def blob_rows_chunk(self, project: str, blob_id: str, n: int) -> bytes | None: ...

    def blob_rows_delete(self, project: str, blob_id: str) -> bool: ...

    def blob_rows_list(self, project: str, query: BlobQuery) -> list[BlobRef]: ...

    def blob_rows_totals(self, project: str) -> tuple[int, int]: ...


class _Spool(Staging):
    def __init__(self) -> None:
        # Unnamed (a kill leaves nothing); closed by discard(), whatever happens to the put.
        self.file: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(0)
        while chunk := self.file.read(CHUNK):
            yield chunk

    def discard(self) -> None:
        self.file.close()


class _Chunks(io.RawIOBase):
    """A blob's chunk rows as a readable stream, fetched one chunk at a time."""

    def __init__(self, rows: BlobRows, project: str, blob_id: str) -> None:
        self.rows, self.project, self.blob_id = rows, project, blob_id
        self.n, self.pending = 0, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pending:
            chunk = self.rows.blob_rows_chunk(self.project, self.blob_id, self.n)
            if chunk is None:
                return 0
            self.n += 1
            self.pending = memoryview(chunk)
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


class DatabaseBlobs(BlobBackend):
    """Blob rows in the store ``rows`` (a SQLite or PostgreSQL ``Store``)."""

    kind = "database"

    def __init__(self, rows: Any) -> None:
        if not isinstance(rows, BlobRows):
            scheme = str(getattr(rows, "url", "?")).split(":", 1)[0]
            raise ConfigError(
                f"storage.blob_store.type 'database' needs a sqlite or postgres database; this one is {scheme}://. "
                "Use type 'local' (files) or 'in-memory'"
            )
        self.rows: BlobRows = rows

    @property
    def location(self) -> str:
        from engram.stores._files import location

        return location(self.rows.url)

    def stage(self, project: str) -> Staging:
        return _Spool()

    def commit(self, project: str, staging: Staging, ref: BlobRef) -> BlobRef:
        assert isinstance(staging, _Spool)
        if self.rows.blob_rows_insert(project, ref, staging.chunks()):
            return ref
        stored = self.rows.blob_rows_ref(project, ref.id)
        return stored or ref

    def stat(self, project: str, blob_id: str) -> BlobRef | None:
        return self.rows.blob_rows_ref(project, blob_id)

    def open(self, project: str, blob_id: str) -> BinaryIO | None:
        if self.rows.blob_rows_ref(project, blob_id) is None:
            return None
        return io.BufferedReader(_Chunks(self.rows, project, blob_id), buffer_size=CHUNK)  # type: ignore[return-value]

    def delete(self, project: str, blob_id: str) -> bool:
        return self.rows.blob_rows_delete(project, blob_id)

    def list(self, project: str, query: BlobQuery) -> list[BlobRef]:
        return self.rows.blob_rows_list(project, query)

    def totals(self, project: str) -> tuple[int, int]:
        return self.rows.blob_rows_totals(project)
