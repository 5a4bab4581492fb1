"""Export and import: a versioned JSONL file that holds every kind of record.

Line 1 is a header ``{"format": "engram", "version": 1, ...}``; every further
line is ``{"kind": "session" | "task" | "entry", "data": {...}}`` with the
field names of ``engram.models``. Sessions come before tasks (tasks refer to
them). Import upserts by natural identity, so re-importing changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from engram import validation as check
from engram._time import utcnow
from engram.errors import ConfigError, InvalidInput
from engram.models import Entry, Session, Task

if TYPE_CHECKING:
    from engram.memory import Memory

FORMAT = "engram"
VERSION = 1
BATCH = 1000
KINDS: dict[str, type[BaseModel]] = {"session": Session, "task": Task, "entry": Entry}


def _line(kind: str, record: BaseModel) -> str:
    return json.dumps({"kind": kind, "data": record.model_dump(mode="json")}, ensure_ascii=False) + "\n"


def export_jsonl(memory: "Memory", path: Path, *, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write every session, task and entry (expired ones too) of ``memory`` to ``path``."""
    store = memory.backend
    counts = {kind: 0 for kind in KINDS}
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            header = {"format": FORMAT, "version": VERSION, "exported_at": utcnow().isoformat(), "source": memory.url}
            out.write(json.dumps(header) + "\n")
            sources: list[tuple[str, Iterator[BaseModel]]] = [
                ("session", store.iter_sessions()),
                ("task", store.iter_tasks()),
                ("entry", store.iter_entries()),
            ]
            for kind, records in sources:
                for record in records:
                    out.write(_line(kind, record))
                    counts[kind] += 1
                    if progress:
                        progress(1)
        tmp.replace(path)  # a half-written export never takes the real name
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    return counts


def count_records(path: Path) -> int:
    """Records in an export (lines after the header), for progress bars."""
    with _open(path) as f:
        return max(sum(1 for _ in f) - 1, 0)


def _open(path: Path):  # type: ignore[no-untyped-def]
    try:
        return path.open("r", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc


def _parse(path: Path, number: int, line: str) -> tuple[str, BaseModel]:
    where = f"{path}, line {number}"
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where} is not JSON: {exc.msg}") from exc
    if not isinstance(obj, dict) or obj.get("kind") not in KINDS or not isinstance(obj.get("data"), dict):
        raise InvalidInput(f'{where} must be {{"kind": one of {", ".join(KINDS)}, "data": {{...}}}}')
    try:
        record = KINDS[obj["kind"]].model_validate(obj["data"])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(
            f"{where}: {obj['kind']} field {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from exc
    if isinstance(record, Entry):
        check.name("key", record.key)
        check.name("namespace", record.namespace)
    return obj["kind"], record


def import_jsonl(memory: "Memory", path: Path, *, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Load an export into ``memory``; entries are upserted in batches."""
    store = memory.backend
    counts = {kind: 0 for kind in KINDS}
    batch: list[Entry] = []

    def flush() -> None:
        if batch:
            store.put_entries(batch, now=utcnow())
            if progress:
                progress(len(batch))
            batch.clear()

    with _open(path) as f:
        header_line = f.readline()
        try:
            header = json.loads(header_line)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ConfigError(f"{path} is not an engram export (no engram header on line 1)")
        if not isinstance(header.get("version"), int) or header["version"] > VERSION:
            raise ConfigError(
                f"{path} is export format version {header.get('version')}; this engram reads up to {VERSION}: upgrade engram"
            )
        for number, line in enumerate(f, start=2):
            if not line.strip():
                continue
            kind, record = _parse(path, number, line)
            counts[kind] += 1
            if isinstance(record, Entry):
                batch.append(record)
                if len(batch) >= BATCH:
                    flush()
                continue
            if isinstance(record, Session):
                store.put_session(record)
            else:
                store.put_task(record)  # type: ignore[arg-type]
            if progress:
                progress(1)
        flush()
    return counts
