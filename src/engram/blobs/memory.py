"""Blobs in this process's memory (``blob_store.type: in-memory``): tests, ephemeral agents."""

from __future__ import annotations

import io
import threading
from typing import BinaryIO

from engram.blobs.base import BlobBackend, BlobQuery, Staging, select
from engram.models import BlobRef


class _Buffer(Staging):
    def __init__(self) -> None:
        self.buffer: io.BytesIO | None = io.BytesIO()

    def write(self, chunk: bytes) -> None:
        assert self.buffer is not None
        self.buffer.write(chunk)

    def discard(self) -> None:
        self.buffer = None


class InMemoryBlobs(BlobBackend):
    """A dict of (project, id) -> (ref, bytes), behind one lock."""

    kind = "in-memory"

    def __init__(self) -> None:
        self._blobs: dict[tuple[str, str], tuple[BlobRef, bytes]] = {}
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return "memory (this process)"

    def stage(self, project: str) -> Staging:
        return _Buffer()

    def commit(self, project: str, staging: Staging, ref: BlobRef) -> BlobRef:
        assert isinstance(staging, _Buffer) and staging.buffer is not None
        data = staging.buffer.getvalue()
        staging.discard()
        with self._lock:
            stored = self._blobs.setdefault((project, ref.id), (ref, data))
        return stored[0]

    def stat(self, project: str, blob_id: str) -> BlobRef | None:
        found = self._blobs.get((project, blob_id))
        return None if found is None else found[0]

    def open(self, project: str, blob_id: str) -> BinaryIO | None:
        found = self._blobs.get((project, blob_id))
        return None if found is None else io.BytesIO(found[1])

    def delete(self, project: str, blob_id: str) -> bool:
        with self._lock:
            return self._blobs.pop((project, blob_id), None) is not None

    def list(self, project: str, query: BlobQuery) -> list[BlobRef]:
        with self._lock:
            refs = [ref for (p, _), (ref, _) in self._blobs.items() if p == project]
        return select(refs, query)

    def totals(self, project: str) -> tuple[int, int]:
        with self._lock:
            sizes = [ref.size for (p, _), (ref, _) in self._blobs.items() if p == project]
        return len(sizes), sum(sizes)
