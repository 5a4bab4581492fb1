"""``memory.blobs``: put, read, list and clean up the blobs of one project, over any blob backend.

Written once for every backend (:mod:`engram.blobs.base`): the input is read a
chunk at a time, hashed while it is staged (a temp file, a buffer), checked
against the limits as it goes, and committed under its SHA-256. Nothing is
visible until the commit; over a limit, what was staged is removed and
:class:`~engram.errors.ContentTooLarge` names the limit.
"""

from __future__ import annotations

import hashlib
import math
import mimetypes
import mmap
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from engram import validation as check
from engram._time import utcnow
from engram.blobs import _ids
from engram.blobs._input import CHUNK, Source
from engram.blobs.base import BlobBackend, BlobQuery, Staging
from engram.errors import ContentTooLarge, InvalidInput, NotFound
from engram.models import Blob, BlobRef, BlobSource, BlobStats

SOURCES = ("user", "tool", "system")
MAX_METADATA_BYTES = 64 * 1024
DEFAULT_MIME = "application/octet-stream"
FILE_COPY_MIN = 256 * 1024  # files from this size are copied in the kernel while a worker hashes them
_T = TypeVar("_T")
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]{0,126}/[\w.+-]{1,127}(?:\s*;\s*[\w.+-]+=[\w.+\"-]+){0,4}")


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    amount = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        amount /= 1024
        if amount < 1024 or unit == "GiB":
            break
    return f"{amount:.1f} {unit}"


class BlobStore:
    """The blobs of ``project`` in ``backend``, with the limits of the blob-store settings.

    Args:
        referenced: the ids that live records (message attachments) point at;
            ``cleanup`` never removes those.
    """

    def __init__(
        self,
        backend: BlobBackend,
        *,
        project: str = "default",
        blob_limit: int,
        total_limit: int,
        cleanup_after_days: float = 60,
        referenced: Callable[[], set[str]] | None = None,
    ) -> None:
        self.backend = backend
        self.project = _ids.project_name(project)
        self.blob_limit = blob_limit
        self.total_limit = total_limit
        self.cleanup_after_days = cleanup_after_days
        self._referenced = referenced or set

    # -- writing -------------------------------------------------------------------
    def put(
        self,
        data: bytes | BinaryIO | str | Path | Any,
        *,
        mime_type: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        source: str = "user",
    ) -> BlobRef:
        """Store ``data`` (bytes, a binary stream or a path) once; the same bytes again return the same ref.

        Large inputs are streamed: read, hashed and staged a chunk at a time.

        Raises:
            ContentTooLarge: over the blob limit or the project's total limit (nothing is kept).
            InvalidInput: bad data, mime type, name, metadata or source.
        """
        check.choice("source", source, SOURCES)
        metadata = check.metadata(metadata or {}, MAX_METADATA_BYTES)
        if name is not None:
            check.name("name", name)
        if mime_type is not None and (not isinstance(mime_type, str) or not _MIME.fullmatch(mime_type)):
            raise InvalidInput(f"mime_type {str(mime_type)[:80]!r} is not a media type such as image/png or text/plain")
        src = Source(data)
        try:
            if src.size is not None:
                self._check_size(src.size)  # before reading a byte
            name = name if name is not None else src.name
            staging = self.backend.stage(self.project)
            try:
                digest, size = self._stage_file(src, staging) or self._stage(src.chunks(), staging)
                existing = self.backend.stat(self.project, digest)
                if existing is not None:
                    return existing
                self._check_total(size)
                ref = BlobRef(
                    id=digest,
                    uri=_ids.uri(digest),
                    size=size,
                    mime_type=mime_type or _guess(name),
                    name=name,
                    sha256=digest,
                    source=cast(BlobSource, source),
                    metadata=metadata,
                    created_at=utcnow(),
                )
                return self.backend.commit(self.project, staging, ref)
            finally:
                staging.discard()
        finally:
            src.close()

    def _stage_file(self, src: Source, staging: Staging) -> tuple[str, int] | None:
        """A whole regular file, copied by the staging (in the kernel) while a worker hashes it
        from a memory map; None when the staging cannot copy files (then it is streamed)."""
        if src.regular_file is None or src.size is None or src.size < FILE_COPY_MIN:
            return None  # small files: the plain loop costs less than a thread hand-off
        hashed = _hashing().submit(_sha256_of, src.regular_file)
        try:
            copied = staging.copy_file(src.regular_file, src.size)
        finally:
            digest = hashed.result()
        if not copied:
            src.regular_file.seek(0)
            return None
        if not src.unchanged():
            raise InvalidInput("the file changed size while it was stored: put it again once it is written")
        return digest, src.size

    def _stage(self, chunks: Iterator[Any], staging: Any) -> tuple[str, int]:
        hasher, size, limit = hashlib.sha256(), 0, self.blob_limit
        # A full chunk is hashed on a worker thread (hashlib lets go of the GIL) while it is
        # written and the next one is read: a large put costs about the slower of the two.
        pending: Future[None] | None = None
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    self._check_size(size, more=True)  # stop reading: the rest is never read
                if pending is not None:
                    pending.result()
                    pending = None
                if len(chunk) >= CHUNK:
                    pending = _hashing().submit(hasher.update, chunk)
                else:
                    hasher.update(chunk)
                staging.write(chunk)
        finally:
            if pending is not None:
                pending.result()
        return hasher.hexdigest(), size

    def _check_size(self, size: int, *, more: bool = False) -> None:
        if size > self.blob_limit:
            at_least = "more than " if more else ""
            raise ContentTooLarge(
                f"the blob is {at_least}{size} bytes; the blob limit is {self.blob_limit} bytes "
                f"({_human(self.blob_limit)}, storage.blob_store.max_blob_size): store a smaller file or raise the limit"
            )

    def _check_total(self, size: int) -> None:
        _, used = self.backend.totals(self.project)
        if used + size > self.total_limit:
            raise ContentTooLarge(
                f"storing {size} more bytes would take project {self.project!r} past its total blob limit of "
                f"{self.total_limit} bytes ({_human(self.total_limit)}, storage.blob_store.max_total_size; "
                f"{used} bytes used): delete blobs, run cleanup, or raise the limit"
            )

    def check_room(self, sizes: dict[str, int]) -> None:
        """Check that blobs (id -> size) would all fit, before an import writes any of them.

        Raises:
            ContentTooLarge: one is over the blob limit, or together they pass the total limit.
        """
        for size in sizes.values():
            self._check_size(size)
        new = sum(size for blob_id, size in sizes.items() if self.backend.stat(self.project, blob_id) is None)
        if new:
            self._check_total(new)

    # -- reading -------------------------------------------------------------------
    def _found(self, read: Callable[[str, str], _T | None], ref_or_id: Any) -> _T:
        """What ``read(project, blob_id)`` of the backend gives for the blob; NotFound where it gives None."""
        blob_id = _ids.blob_id(ref_or_id)
        found = read(self.project, blob_id)
        if found is None:
            raise self._missing(blob_id)
        return found

    def _missing(self, blob_id: str) -> NotFound:
        return NotFound(f"no blob {blob_id} in project {self.project!r}")

    def stat(self, ref_or_id: Any) -> BlobRef:
        """The ref of a blob. Raises NotFound when it is not there."""
        return self._found(self.backend.stat, ref_or_id)

    def exists(self, ref_or_id: Any) -> bool:
        """Whether the blob is stored (an id that is not well-formed raises InvalidInput)."""
        return self.backend.stat(self.project, _ids.blob_id(ref_or_id)) is not None

    def open(self, ref_or_id: Any) -> BinaryIO:
        """A readable binary stream of the blob's bytes; close it when done. Raises NotFound."""
        return self._found(self.backend.open, ref_or_id)

    def get(self, ref_or_id: Any) -> bytes:
        """The blob's bytes, whole (use :meth:`open` for large blobs). Raises NotFound."""
        with self.open(ref_or_id) as stream:
            return stream.read()

    def save(self, ref_or_id: Any, destination: str | Path) -> Path:
        """Write the blob to the file ``destination``, whole or not at all (a temp file beside it,
        then a rename); a backend with files copies in the kernel. Returns the path.

        Raises:
            NotFound: no such blob. InvalidInput: the destination's directory does not exist.
        """
        target = Path(destination)
        directory = target.parent
        if not directory.is_dir():
            raise InvalidInput(f"directory {directory} does not exist: create it or choose another destination")
        blob_id = _ids.blob_id(ref_or_id)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                if self.backend.has_files:
                    with self.path(blob_id).open("rb") as stream:
                        _sendfile(stream, out)
                else:
                    with self.open(blob_id) as stream:
                        shutil.copyfileobj(stream, out, CHUNK)
            os.replace(tmp, target)
        except FileNotFoundError:
            raise self._missing(blob_id) from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target

    def path(self, ref_or_id: Any) -> Path:
        """The file holding the blob (local backend only; read it, never write it).

        Raises:
            NotFound: no such blob. Unsupported: the backend keeps no files.
        """
        return self._found(self.backend.path, ref_or_id)

    def list(
        self,
        limit: int = 100,
        offset: int = 0,
        source: str | None = None,
        older_than: datetime | timedelta | None = None,
    ) -> list[BlobRef]:
        """Refs of the project's blobs, newest first; ``older_than`` a moment or an age."""
        check.limit(limit)
        check.offset(offset)
        if source is not None:
            check.choice("source", source, SOURCES)
        return self.backend.list(self.project, BlobQuery(limit, offset, source, _moment(older_than)))

    def iter_all(self, batch_size: int = 1000) -> Iterator[BlobRef]:
        """Every ref of the project, oldest last, a page at a time."""
        offset = 0
        while page := self.backend.list(self.project, BlobQuery(batch_size, offset)):
            yield from page
            offset += len(page)

    def stats(self) -> BlobStats:
        """How many blobs the project holds, their bytes, the backend and where it keeps them."""
        count, total = self.backend.totals(self.project)
        return BlobStats(
            count=count,
            total_size=total,
            backend=self.backend.kind,
            location=self.backend.location,
            blob_limit=self.blob_limit,
            total_limit=self.total_limit,
        )

    # -- removing ------------------------------------------------------------------
    def delete(self, ref_or_id: Any) -> bool:
        """Remove a blob; False when it was not there."""
        return self.backend.delete(self.project, _ids.blob_id(ref_or_id))

    def cleanup(self, older_than_days: float | None = None, *, dry_run: bool = False) -> int:
        """Remove blobs older than ``older_than_days`` (default: ``cleanup_after_days``) that no live
        message references; returns how many went (or, with ``dry_run``, would go)."""
        days = self.cleanup_after_days if older_than_days is None else older_than_days
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days) or not 0 <= days <= 36500:
            raise InvalidInput(f"older_than_days must be a number from 0 to 36500, got {older_than_days!r}")
        before = utcnow() - timedelta(days=days)
        old = [ref.id for ref in self.iter_all() if ref.created_at < before]
        if not old:
            return 0
        keep = self._referenced()
        gone = [blob_id for blob_id in old if blob_id not in keep]
        if dry_run:
            return len(gone)
        return sum(1 for blob_id in gone if self.backend.delete(self.project, blob_id))

    def close(self) -> None:
        self.backend.close()

    # -- for export, import and copy -----------------------------------------------
    @property
    def records(self) -> BlobRecords:
        return BlobRecords(self)


_pool: ThreadPoolExecutor | None = None


def _hashing() -> ThreadPoolExecutor:
    """The threads that hash large chunks (made on first use; shared by every store)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engram-blob-hash")
    return _pool


def _sha256_of(file: BinaryIO) -> str:
    """The SHA-256 of a whole regular file, read through a memory map (no copy into Python)."""
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return hashlib.sha256(mapped).hexdigest()


def _sendfile(source: BinaryIO, out: BinaryIO) -> None:
    """Copy a whole file in the kernel, as ``shutil.copyfile`` does."""
    size = os.fstat(source.fileno()).st_size
    offset = 0
    while offset < size:
        sent = os.sendfile(out.fileno(), source.fileno(), offset, size - offset)
        if sent == 0:
            break
        offset += sent


def _moment(older_than: datetime | timedelta | None) -> datetime | None:
    if older_than is None or isinstance(older_than, datetime):
        if isinstance(older_than, datetime) and older_than.tzinfo is None:
            raise InvalidInput("older_than must be a timezone-aware datetime (e.g. datetime.now(timezone.utc))")
        return older_than
    if isinstance(older_than, timedelta):
        return utcnow() - older_than
    raise InvalidInput(f"older_than must be a datetime or a timedelta, not {type(older_than).__name__}")


def _guess(name: str | None) -> str:
    return (mimetypes.guess_type(name)[0] if name else None) or DEFAULT_MIME


class BlobRecords:
    """The blob kind's rows for export, import and copy (``engram.kinds``): whole blobs, bytes included."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def iter_blobs(self, batch_size: int = 1000) -> Iterator[Blob]:
        for ref in self.store.iter_all(batch_size):
            try:
                content = self.store.get(ref)
            except NotFound:
                continue  # deleted while we were listing
            yield Blob(**ref.model_dump(), content=content)

    def put_blob(self, blob: Blob) -> None:
        """Store an exported blob keeping its ref (created_at, name, source); its bytes were
        checked against its sha256 when the ``Blob`` was validated."""
        store = self.store
        if store.backend.stat(store.project, blob.id) is not None:
            return
        store._check_size(blob.size)
        store._check_total(blob.size)
        staging = store.backend.stage(store.project)
        try:
            staging.write(blob.content)
            store.backend.commit(store.project, staging, blob.ref())
        finally:
            staging.discard()

    def get_blob(self, blob_id: str) -> BlobRef | None:
        return self.store.backend.stat(self.store.project, blob_id)
