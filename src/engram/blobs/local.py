"""Blobs as files in a directory (``blob_store.type: local``).

Layout, one directory per project::

    <root>/<project>/<id[:2]>/<id>         the bytes
    <root>/<project>/<id[:2]>/<id>.json    the BlobRef (what makes the blob visible)
    <root>/<project>/.tmp/*.part           puts under way, each locked (flock) by its writer

A put writes a temp file while it hashes, then ``os.replace`` gives it its
name, then the metadata file is linked into place (``os.link`` fails when
another process got there first: the first put's ref stands). A blob is
visible only once its metadata file exists, so a writer killed half-way
leaves nothing visible; the next open of the store removes temp files whose
writer's lock is gone. Ids are checked against a strict pattern before they
reach a path (:mod:`engram.blobs._ids`). Files are 0600, directories 0700.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from engram.blobs.base import BlobBackend, BlobQuery, Staging, select
from engram.errors import BackendError
from engram.models import BlobRef
from engram.stores._files import PRIVATE_DIR, ensure_directory

TMP = ".tmp"
STALE_SECONDS = 60  # an unlocked temp file this old has no writer


def _private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        return
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode passes through the umask


class _TempFile(Staging):
    """A locked temp file in the project's ``.tmp``; the lock says its writer is alive."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(dir=directory, suffix=".new")  # 0600, O_EXCL
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Named *.part only once locked: a cleaner never takes a file between its creation and its lock.
        self.path: Path | None = Path(name).with_suffix(".part")
        os.rename(name, self.path)
        self.file = os.fdopen(fd, "wb", buffering=0)

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def copy_file(self, source: BinaryIO, size: int) -> bool:
        # In the kernel, as shutil.copyfile does: the bytes never pass through Python.
        offset, src, dst = 0, source.fileno(), self.file.fileno()
        while offset < size:
            sent = os.sendfile(dst, src, offset, size - offset)
            if sent == 0:
                break  # the file shrank: the engine's size check after the copy says so
            offset += sent
        return True

    def release(self) -> None:
        if not self.file.closed:
            self.file.close()  # closing drops the lock

    def discard(self) -> None:
        self.release()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class LocalBlobs(BlobBackend):
    """A directory of blob files; see the module docstring for the layout."""

    kind = "local"
    has_files = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._ready: set[str] = set()
        if self.root.is_dir():  # made on the first put: opening a Memory never creates it
            self.remove_abandoned()

    @property
    def location(self) -> str:
        return str(self.root)

    def _project(self, project: str) -> Path:
        where = self.root / project
        if project not in self._ready:
            ensure_directory(self.root, create=True)
            _private_dir(where)
            _private_dir(where / TMP)
            self._ready.add(project)
        return where

    def _files(self, project: str, blob_id: str) -> tuple[Path, Path]:
        shard = self.root / project / blob_id[:2]
        return shard / blob_id, shard / f"{blob_id}.json"

    def remove_abandoned(self) -> int:
        """Remove temp files no live writer holds (a put killed half-way); returns how many."""
        removed = 0
        for tmp in self.root.glob(f"*/{TMP}/*.part"):
            try:
                fd = os.open(tmp, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                tmp.unlink(missing_ok=True)
                removed += 1
            except BlockingIOError:
                pass  # a writer is alive and holds it
            finally:
                os.close(fd)
        stale = time.time() - STALE_SECONDS
        for leftover in [*self.root.glob(f"*/{TMP}/*.new"), *self.root.glob(f"*/{TMP}/*.json")]:
            try:
                if leftover.stat().st_mtime < stale:  # killed before it was locked, or a ref not linked
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def stage(self, project: str) -> Staging:
        return _TempFile(self._project(project) / TMP)

    def commit(self, project: str, staging: Staging, ref: BlobRef) -> BlobRef:
        assert isinstance(staging, _TempFile) and staging.path is not None
        data, meta = self._files(project, ref.id)
        try:
            stored = self.stat(project, ref.id)
            if stored is not None:
                return stored
            _private_dir(data.parent)
            os.replace(staging.path, data)  # the same bytes whoever wins: the id is their hash
            staging.path = None
            fd, meta_tmp = tempfile.mkstemp(dir=self.root / project / TMP, suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(ref.model_dump_json())
                try:
                    os.link(meta_tmp, meta)  # atomic, and never over another put's ref
                except FileExistsError:
                    stored = self.stat(project, ref.id)
                    if stored is not None:
                        return stored
                    os.replace(meta_tmp, meta)
            finally:
                Path(meta_tmp).unlink(missing_ok=True)
            return ref
        except OSError as exc:
            raise BackendError(f"cannot store blob {ref.id} in {self.root}: {exc.strerror or exc}") from exc
        finally:
            staging.discard()

    def stat(self, project: str, blob_id: str) -> BlobRef | None:
        data, meta = self._files(project, blob_id)
        try:
            ref = BlobRef.model_validate_json(meta.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            raise BackendError(f"blob metadata {meta} cannot be read: {exc}") from exc
        return ref if data.exists() else None

    def open(self, project: str, blob_id: str) -> BinaryIO | None:
        if self.stat(project, blob_id) is None:
            return None
        try:
            return self._files(project, blob_id)[0].open("rb")
        except FileNotFoundError:
            return None

    def path(self, project: str, blob_id: str) -> Path | None:
        return self._files(project, blob_id)[0] if self.stat(project, blob_id) is not None else None

    def delete(self, project: str, blob_id: str) -> bool:
        data, meta = self._files(project, blob_id)
        try:
            meta.unlink()  # invisible first, then the bytes
        except FileNotFoundError:
            return False
        data.unlink(missing_ok=True)
        return True

    def _metas(self, project: str) -> Iterator[Path]:
        yield from (self.root / project).glob("??/*.json")

    def list(self, project: str, query: BlobQuery) -> list[BlobRef]:
        refs = []
        for meta in self._metas(project):
            ref = self.stat(project, meta.name[: -len(".json")])
            if ref is not None:
                refs.append(ref)
        return select(refs, query)

    def totals(self, project: str) -> tuple[int, int]:
        # File sizes, not parsed metadata: this runs before every put.
        count = size = 0
        where = self.root / project
        if not where.is_dir():
            return 0, 0
        for shard in os.scandir(where):
            if shard.name == TMP or not shard.is_dir():
                continue
            names = {e.name: e for e in os.scandir(shard.path)}
            for name, entry in names.items():
                if not name.endswith(".json") and f"{name}.json" in names:
                    count += 1
                    size += entry.stat().st_size
        return count, size

