"""JSON-files backend (``json:///path/to/dir``): a directory anyone can read, diff and back up.

Layout of the directory::

    entries.json    {"format": "engram-json", "version": 1, "kind": "entries", "records": [...]}
    sessions.json   the same envelope, "kind": "sessions"
    tasks.json      the same envelope, "kind": "tasks"
    messages.json, summaries.json, profiles.json, checkpoints.json, runs.json
                    conversation memory, the same envelope (written once used)
    vectors.json    embeddings and their model (written once used; see
                    ``engram.stores.jsonfiles.vectors``)
    message_vectors.json
                    embeddings of chat messages (written once used; see
                    ``engram.stores.jsonfiles.message_vectors``)
    .lock           empty; held with flock() by the process that writes

Records have exactly the fields of ``engram.models`` (one record a line).
Entries keep their first-insert order, which breaks ties of ``updated_at``.

Writes: take the lock (``fcntl.flock``, exclusive; one writer across
processes), reload whatever another process changed, apply the change, write
the changed file to a temporary file, fsync it, rename it over the old one and
fsync the directory. Readers never lock: a rename is atomic, so they see the
old file or the new one, never half of one. Every call first checks the
files' identity (inode, mtime, size) and reloads those that changed.

In memory the data lives in a :class:`~engram.stores.memory.store.MemoryStore`, so
semantics (upserts, TTL, BM25 search over ``engram.search.bm25``) are exactly
those of ``memory://``. Each write rewrites one whole file: meant for tiny
deployments (thousands of entries, not millions).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ValidationError

from engram import kinds as record_kinds
from engram._time import utcnow
from engram.config import Settings
from engram.errors import BackendError, ConfigError, Conflict
from engram.stores._driver_errors import FILES as FILE_ERRORS
from engram.stores._driver_errors import translating
from engram.stores._files import ensure_directory
from engram.stores.base import Counts, Store
from engram.stores.capabilities import MULTIPROCESS, PERSISTENT
from engram.stores.jsonfiles.message_vectors import (
    MESSAGE_VECTORS_FILE,
    JsonMessageVectors,
    drop_stale_message_vectors,
    render_message_vectors,
    restore_message_vectors,
)
from engram.stores.jsonfiles.snapshot import snapshot_methods
from engram.stores.jsonfiles.vectors import VECTORS_FILE, JsonVectors, render_vectors, restore_vectors
from engram.stores.memory.store import MemoryStore

FORMAT = "engram-json"
VERSION = 1
# file -> model of the record files, from the one table of record kinds (engram.kinds).
KINDS: dict[str, type[BaseModel]] = {
    kind.file: kind.model for kind in record_kinds.LINE_KINDS if kind.layer == record_kinds.DATABASE_LAYER
}
# Every file the store writes: the record files, then the vector files (their own layout).
FILES: tuple[str, ...] = tuple(kind.file for kind in record_kinds.STORE_KINDS)
LOCK_FILE = ".lock"
# The files of the conversation kinds, which are also the names of
# MemoryStore._restore_conversation's arguments.
CONVERSATION_FILES = tuple(
    kind.file for kind in record_kinds.LINE_KINDS if kind.family == record_kinds.CONVERSATION_FAMILY
)

_Stamp = tuple[int, int, int] | None


def parse_json_url(url: str) -> Path:
    """``json:///rel/dir`` -> ``rel/dir``; ``json:////abs/dir`` -> ``/abs/dir``."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"json URL {url!r} has a host; write json:///relative/dir or json:////abs/dir")
    if parts.query:
        raise ConfigError(f"json URL {url!r} takes no options")
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise ConfigError(f"json URL {url!r} names no directory: use json:///path/to/dir")
    return Path(path)


def _stamp(path: Path) -> _Stamp:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def render(kind: str, records: list[BaseModel]) -> str:
    """The text of one file: the envelope, then one record a line."""
    head = json.dumps({"format": FORMAT, "version": VERSION, "kind": kind}, ensure_ascii=False)[:-1]
    written = record_kinds.by_file(kind).written
    lines = ",\n".join(json.dumps(written(r), ensure_ascii=False) for r in records)
    return f'{head}, "records": [\n{lines}\n]}}\n' if records else f'{head}, "records": []}}\n'


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename over ``path``, fsync the directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:  # keep the mode an operator gave the file; a new one stays mkstemp's owner-only 0600
            os.fchmod(fd, path.stat().st_mode & 0o777)
        except FileNotFoundError:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# Every family method the working copy answers, generated from the kinds table (snapshot.py).
MemorySnapshot = snapshot_methods((JsonMessageVectors, JsonVectors))


class JsonStore(MemorySnapshot, JsonMessageVectors, JsonVectors, Store):
    """A directory of JSON files; see the module docstring for the layout and the locking.

    Its family methods are generated (``MemorySnapshot``): reads answered by the working copy,
    writes under the lock, saving the files the kinds table says they change."""

    # What the working copy holds, on disk: a kind the in-memory store holds is held here too.
    capabilities: ClassVar[frozenset[str]] = MemoryStore.capabilities | {MULTIPROCESS, PERSISTENT}

    def __init__(self, directory: str | os.PathLike[str], *, url: str | None = None):
        self.directory = Path(directory)
        super().__init__(url or f"json:///{self.directory}")
        ensure_directory(self.directory)  # never made here: a missing directory is a typo more often than a wish
        try:
            (self.directory / LOCK_FILE).touch(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.directory / LOCK_FILE}: {exc.strerror or exc}") from exc
        self._lock = threading.RLock()
        self._mem = MemoryStore("memory://")
        self._stamps: dict[str, _Stamp] = {kind: None for kind in FILES}
        self._loaded = False
        self._closed = False
        with self._lock:
            self._refresh()

    @classmethod
    def from_url(cls, url: str, *, settings: Settings | None = None) -> "JsonStore":
        return cls(parse_json_url(url), url=url)

    # -- files -----------------------------------------------------------------------
    def _path(self, kind: str) -> Path:
        return self.directory / f"{kind}.json"

    def _read(self, kind: str) -> list[Any]:
        path = self._path(kind)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot read {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("records"), list):
            raise BackendError(f"{path} is not an engram JSON store file (no {FORMAT!r} envelope)")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise ConfigError(f"{path} is format version {data.get('version')}; this engram reads up to {VERSION}")
        model = KINDS[kind]
        records = []
        for i, raw in enumerate(data["records"]):
            try:
                records.append(model.model_validate(raw))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(map(str, first["loc"]))
                raise BackendError(f"{path}, record {i}: field {where}: {first['msg']}") from exc
        return records

    def _refresh(self) -> None:
        """Reload everything when a file changed under us (another process wrote it)."""
        if self._closed:
            raise BackendError(f"{self.url} is closed")
        stamps = {kind: _stamp(self._path(kind)) for kind in FILES}
        if self._loaded and stamps == self._stamps:
            return
        mem = MemoryStore("memory://")
        data = {kind: self._read(kind) for kind in KINDS}
        for kind in record_kinds.LINE_KINDS:  # in the table's order: what records refer to first
            if kind.file not in data:
                continue  # a kind of the blob store, not of a Store
            records = data[kind.file]
            if kind.family == record_kinds.CONVERSATION_FAMILY or not records:
                continue  # conversation records are restored together below, keeping their seq
            if kind.family == record_kinds.ENTRIES:
                mem.put_entries(records, now=utcnow())
                continue
            put = getattr(mem, kind.put)
            for record in [records] if kind.put_many else records:
                try:
                    put(record)
                except Conflict as exc:
                    what = kind.name if kind.put_many else f"{kind.name} {kind.identity(record)}"
                    raise BackendError(f"{self._path(kind.file)}: {what}: {exc}") from exc
        mem._restore_conversation(**{kind: data[kind] for kind in CONVERSATION_FILES})
        restore_vectors(mem, self._path(VECTORS_FILE))
        restore_message_vectors(mem, self._path(MESSAGE_VECTORS_FILE))
        self._mem, self._stamps, self._loaded = mem, stamps, True

    def _save(self, kind: str) -> None:
        if kind == VECTORS_FILE:
            self._write_file(kind, render_vectors(self._mem))
            return
        if kind == MESSAGE_VECTORS_FILE:
            self._write_file(kind, render_message_vectors(self._mem))
            return
        held = record_kinds.by_file(kind)
        records: list[BaseModel] = list(getattr(self._mem, held.iterate)())
        if held.order:  # else the store's own order (entries: first insert)
            records.sort(key=held.sort_key)
        self._write_file(kind, render(kind, records))
        if kind == "entries" and self._mem._vstate()["vectors"]:
            before = len(self._mem._vstate()["vectors"])
            self._mem.count_vectors(None)  # drops vectors whose entry is gone or was rewritten
            if len(self._mem._vstate()["vectors"]) != before:
                self._save(VECTORS_FILE)
        if kind == "messages" and drop_stale_message_vectors(self._mem):
            self._save(MESSAGE_VECTORS_FILE)  # the vectors of deleted or pruned messages go with them

    def _write_file(self, kind: str, text: str) -> None:
        path = self._path(kind)
        try:
            write_atomically(path, text)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror or exc}") from exc
        self._stamps[kind] = _stamp(path)

    @contextmanager
    def _writing(self, *kinds: str) -> Iterator[MemoryStore]:
        with self._lock:
            try:
                with translating(FILE_ERRORS, f"writing {self.directory}"), (self.directory / LOCK_FILE).open("a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    self._refresh()
                    yield self._mem
                    for kind in kinds:
                        self._save(kind)
            except BaseException:
                self._loaded = False  # memory may be ahead of the files: reload next time
                raise

    def _reading(self) -> MemoryStore:
        with self._lock:
            self._refresh()
            return self._mem

    # -- operations ------------------------------------------------------------------------
    def counts(self, *, now: datetime) -> Counts:
        c = self._reading().counts(now=now)
        size = sum(st[2] for st in self._stamps.values() if st is not None)
        return dataclasses.replace(c, size_bytes=size)

    def close(self) -> None:
        with self._lock:
            self._closed = True
