"""The contract every blob backend implements: a few primitives over (project, id).

The engine (:class:`engram.blobs.store.BlobStore`) streams, hashes, checks the
limits and validates ids once; a backend only stages bytes, commits them under
an id, and reads, lists, counts and deletes what it holds. Ids reaching a
backend are already valid (:mod:`engram.blobs._ids`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, ClassVar

from engram.errors import Unsupported
from engram.models import BlobRef


@dataclass(frozen=True)
class BlobQuery:
    """Which refs ``list`` returns: newest first, ``offset`` skipped, at most ``limit``."""

    limit: int = 100
    offset: int = 0
    source: str | None = None
    older_than: datetime | None = None


def select(refs: Iterable[BlobRef], query: BlobQuery) -> list[BlobRef]:
    """``query`` applied to refs in any order (for backends that scan what they hold)."""
    kept = [
        r
        for r in refs
        if (query.source is None or r.source == query.source)
        and (query.older_than is None or r.created_at < query.older_than)
    ]
    kept.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return kept[query.offset : query.offset + query.limit]


class Staging(ABC):
    """Bytes on their way in, before their id is known; gone unless committed."""

    @abstractmethod
    def write(self, chunk: bytes) -> None: ...

    @abstractmethod
    def discard(self) -> None:
        """Remove what was staged (safe to call twice, and after a commit)."""

    def copy_file(self, source: BinaryIO, size: int) -> bool:
        """Stage the whole regular file ``source`` (``size`` bytes) in one go, e.g. by a copy in
        the kernel; False when this staging cannot (the engine then streams it in chunks)."""
        return False


class BlobBackend(ABC):
    """Where blobs live. ``kind`` is the ``blob_store.type`` that selects it."""

    kind: ClassVar[str]
    has_files: ClassVar[bool] = False

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the blobs are, for people (a directory, a database, "this process")."""

    @abstractmethod
    def stage(self, project: str) -> Staging: ...

    @abstractmethod
    def commit(self, project: str, staging: Staging, ref: BlobRef) -> BlobRef:
        """Make the staged bytes the blob ``ref`` at once; when the id is there already, keep
        that blob (same bytes), discard the staged copy and return the stored ref."""

    @abstractmethod
    def stat(self, project: str, blob_id: str) -> BlobRef | None: ...

    @abstractmethod
    def open(self, project: str, blob_id: str) -> BinaryIO | None: ...

    def path(self, project: str, blob_id: str) -> Path | None:
        raise Unsupported(f"the {self.kind} blob store keeps no files: use get() or open()")

    @abstractmethod
    def delete(self, project: str, blob_id: str) -> bool: ...

    @abstractmethod
    def list(self, project: str, query: BlobQuery) -> list[BlobRef]: ...

    @abstractmethod
    def totals(self, project: str) -> tuple[int, int]:
        """(how many blobs, their bytes) of ``project``."""

    def close(self) -> None:
        """Release what the backend holds open."""
