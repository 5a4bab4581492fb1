"""Export and import: a versioned JSONL file that holds every kind of record.

Line 1 is a header ``{"format": "engram", "version": 1, ...}``; every further
line is ``{"kind": "session" | "task" | "entry", "data": {...}}`` with the
field names of ``engram.models``. Sessions come before tasks (tasks refer to
them). Import upserts by natural identity, so re-importing changes nothing.

Backends with conversation memory add ``message`` (in ``seq`` order, after
the sessions), ``summary``, ``profile``, ``checkpoint`` and ``run`` lines; counts name
these kinds only when the file holds some. Messages are imported in batches
through ``Store.put_messages``: an id already there is skipped, and a message
keeps its ``seq`` unless the store has handed that number out already (then it
takes the next one, in the same order); summaries are re-pointed at them.

Embeddings travel as optional additions (``engram._transfer_vectors``): an
``embedding_model`` in the header and an ``"embedding"`` (base64 float32)
beside the data of an entry or message that has one. Readers that do not know
them skip them, so the format stays version 1.

The kinds, their tags, their order and how each is listed and written come
from the one table of record kinds (``engram.kinds``). Blobs come from the
Memory's blob store: a ``blob`` line holds the ref and the bytes (base64),
checked against the ref's SHA-256 and size when the line is read.

An import applies a whole file or nothing of it. Where the backend has
transactions (SQLite, PostgreSQL) it reads the file once, checking each line
(UTF-8, JSON, fields, embeddings) and writing it, all in one transaction that
a bad line rolls back; blobs, which go to the blob store outside it, are
written last, once every line has passed and all of them fit. Elsewhere the
file is read through twice, first to check every line, then to apply it. So a
bad line anywhere changes nothing. Entries go in with their vectors in one
write per batch.

An entry line in the export's own form (UTC timestamps, as ``export_jsonl``
writes them) is validated into plain dicts and kept as text: an ``EntryRow``
whose timestamps are already in the stores' form, which ``Store.put_entry_rows``
writes without building an ``Entry`` or formatting a datetime (on SQLite).
Any other line goes through the models, which accept the same values in any
form they know, normalize them, and say what is wrong with a bad one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, TypedDict

from engram import _transfer_vectors as vectors_io
from engram import kinds as record_kinds
from engram import validation as check
from engram._time import utcnow
from engram.embeddings.pipeline import Overlap
from engram.errors import ConfigError, InvalidInput
from engram.models import Blob, Entry, Message, Summary
from engram.search.context import CONTEXT_CHARS
from engram.stores.base import Store
from engram.stores.contracts.entries import EntryRow

if TYPE_CHECKING:
    from engram.memory import Memory

FORMAT = "engram"
VERSION = 1
BATCH = 1000
# Entries without embeddings go in bigger batches: each batch's full-text rows are one index
# segment, and fewer, larger segments cost ~15% less to write and merge (stores/sqlite/bulk.py).
ENTRY_BATCH = 10_000
# Derived from the one table of record kinds (engram.kinds), in its order.
KINDS: dict[str, type[BaseModel]] = {kind.name: kind.model for kind in record_kinds.LINE_KINDS}
CONVERSATION_KINDS: dict[str, type[BaseModel]] = {
    kind.name: kind.model for kind in record_kinds.LINE_KINDS if kind.family == record_kinds.CONVERSATION_FAMILY
}
BASE_KINDS = tuple(kind.name for kind in record_kinds.BASE_KINDS)


def _line(kind: str, record: BaseModel, embedding: Any = None) -> str:
    line: dict[str, Any] = {"kind": kind, "data": record_kinds.BY_NAME[kind].written(record)}
    if embedding is not None:
        line["embedding"] = vectors_io.encode(embedding)
    return json.dumps(line, ensure_ascii=False) + "\n"


def export_jsonl(memory: "Memory", path: Path, *, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write every session, task and entry (expired ones too) of ``memory`` to ``path``."""
    store = memory.backend
    counts = {kind: 0 for kind in BASE_KINDS}
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            header = {"format": FORMAT, "version": VERSION, "exported_at": utcnow().isoformat(), "source": memory.url}
            header.update(vectors_io.header_fields(store))
            out.write(json.dumps(header) + "\n")
            sources: list[tuple[str, Iterator[BaseModel]]] = [
                (kind.name, getattr(kind.holder(memory), kind.iterate)())
                for kind in record_kinds.LINE_KINDS
                if kind.held_by(store)
            ]
            for kind, records in sources:
                lookup = vectors_io.VECTORS_OF.get(kind)
                pairs = vectors_io.with_vectors(store, records, lookup) if lookup else ((r, None) for r in records)
                for record, embedding in pairs:
                    out.write(_line(kind, record, embedding))
                    counts[kind] = counts.get(kind, 0) + 1
                    if progress:
                        progress(1)
        tmp.replace(path)  # a half-written export never takes the real name
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    return counts


def count_records(path: Path) -> int:
    """Records in an export (lines after the header), for progress bars.

    Counts newlines in binary blocks (a tenth of the time of reading text
    lines: it runs before every ``engram import``, on top of the import);
    whether the file is valid is for the import to say.
    """
    lines, last = 0, b"\n"
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    if last != b"\n":
        lines += 1  # a last line without its newline
    return max(lines - 1, 0)


def _open(path: Path):  # type: ignore[no-untyped-def]
    try:
        return path.open("r", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc


def _lines(path: Path, f: Any) -> Iterator[str]:
    """The lines of ``f``; a file that is not UTF-8 text (a binary file) is InvalidInput."""
    number = 0
    try:
        for number, line in enumerate(f, start=1):  # noqa: B007 - read in the except clause
            if "\x00" in line:
                raise InvalidInput(f"{path}, line {number} holds a NUL byte: a binary file, not an engram export")
            yield line
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path}, line {number + 1} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
            "a binary or differently encoded file, not an engram export"
        ) from exc


def _records(
    path: Path, max_bytes: int, only: Collection[int] | None = None
) -> Iterator[tuple[int, str, Any, Any]]:
    """``(line number, kind, record, embedding or None)`` for each record line (or for the
    lines numbered in ``only``), after the header is checked. An entry is an ``EntryRow``.

    Raises:
        ConfigError: not an engram export, or a newer format version.
        InvalidInput: a line that is not text, not JSON or not a valid record, or holds
            what a store would refuse (see :func:`_screen`).
    """
    with _open(path) as f:
        lines = _lines(path, f)
        header_line = next(lines, "")
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
        file_model = vectors_io.header_model(header)
        for number, line in enumerate(lines, start=2):
            if line.isspace() or (only is not None and number not in only):
                continue
            kind, record = _parse(path, number, line)
            _screen(path, number, line, record, max_bytes)
            embedding = None
            if kind in vectors_io.VECTORS_OF:
                embedding = vectors_io.line_embedding(path, number, line, file_model)
            yield number, kind, record, embedding


def _file_model(path: Path) -> Any:
    with _open(path) as f:
        try:
            return vectors_io.header_model(json.loads(next(_lines(path, f), "")))
        except (json.JSONDecodeError, AttributeError):
            return None


class _EntryLine(BaseModel):
    """An entry line as ``export_jsonl`` writes it, validated straight from its text."""

    kind: Literal["entry"]
    data: Entry


# A timestamp as exports write it (pydantic's UTC "Z" form, or the stores' "+00:00" one): kept
# as text (to_iso's form) instead of parsed and formatted back. Any other form the Entry model
# accepts takes the full path below, which normalizes it.
_STAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?(Z|\+00:00)$"
_Stamp = Annotated[str, StringConstraints(pattern=_STAMP)]


@with_config(ConfigDict(extra="forbid"))
class _ExportedEntry(TypedDict):
    """The fields of ``Entry`` (the same types, the same required ones), timestamps as text."""

    id: str
    key: str
    namespace: str
    content: str
    context: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any]]
    created_at: _Stamp
    updated_at: _Stamp
    expires_at: NotRequired[_Stamp | None]


class _ExportedEntryLine(TypedDict):
    kind: Literal["entry"]
    data: _ExportedEntry


# Validates into plain dicts: ~half the time of building the Entry model, and less than json.loads
# (the adapter's own validator: its validate_json wrapper adds ~7% per line).
_validate_entry_line = TypeAdapter(_ExportedEntryLine).validator.validate_json
_ENTRY_LINE = '{"kind": "entry", "data": {'


def _stamp(text: str) -> str:
    """``to_iso`` of a timestamp that matched ``_STAMP``, without a datetime in between.

    Raises:
        ValueError: not a date (month 13, February 30).
    """
    datetime.fromisoformat(text)  # what it refuses (February 30) the Entry model judges and names
    if len(text) == 32:
        return text
    return (text[:26] if len(text) == 27 else text[:19] + ".000000") + "+00:00"


def _entry_row(line: str) -> EntryRow | None:
    """The row of a well-formed entry line in the export's own form, else None (to be checked in full)."""
    try:
        d = _validate_entry_line(line)["data"]
        created = _stamp(d["created_at"])
        updated = created if d["updated_at"] == d["created_at"] else _stamp(d["updated_at"])
        expires = d.get("expires_at")
        row = EntryRow(
            d["id"], check.name("key", d["key"]), check.name("namespace", d["namespace"]), d["content"],
            d.get("context"), d.get("metadata", {}), created, updated, None if expires is None else _stamp(expires),
        )  # fmt: skip
    except (ValidationError, ValueError):  # InvalidInput included: the full path says what is wrong
        return None
    return row


def _entry_record(record: Entry) -> EntryRow:
    """An entry line read by the model, its names checked, as the row the import writes."""
    check.name("key", record.key)
    check.name("namespace", record.namespace)
    return EntryRow.of(record)


def _screen(path: Path, number: int, line: str, record: Any, max_bytes: int) -> None:
    """Refuse, naming the line, what ``store()`` and ``add_message()`` refuse: an unpaired
    surrogate anywhere (it cannot be stored as UTF-8), content or metadata over
    ``max_bytes`` or nested too deeply, an entry's context longer than a store keeps.

    The full checks run only on a line that could fail them (a ``\\ud`` escape, more
    characters than ``max_bytes / 4``, more brackets than the nesting limit): an
    export's lines pass the screen at the cost of three scans of their text.
    """
    try:
        if "\\u" in line and _SURROGATE_ESCAPE.search(line) and not _encodable(line):
            raise InvalidInput("it holds an unpaired surrogate (a \\ud800-\\udfff escape alone): it cannot be stored as UTF-8")
        context = getattr(record, "context", None)
        if context is not None and len(context) > CONTEXT_CHARS:
            raise InvalidInput(
                f"context is {len(context)} characters; an entry keeps at most {CONTEXT_CHARS} (what store() keeps of one)"
            )
        if isinstance(record, (EntryRow, Message, Summary)) and (
            len(line) * 4 > max_bytes or line.count("[") + line.count("{") > check.MAX_JSON_DEPTH
        ):
            check.content(record.content, max_bytes)
            if not isinstance(record, Summary):
                check.metadata(record.metadata, max_bytes)
    except InvalidInput as exc:  # ContentTooLarge included, its type kept
        raise type(exc)(f"{path}, line {number}: {exc}") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(line: str) -> bool:
    # A surrogate pair (an emoji written as two escapes) decodes to one character and passes.
    try:
        json.dumps(json.loads(line), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except RecursionError:  # nested past the limit: the checks after this one say so
        pass
    return True


def _parse(path: Path, number: int, line: str) -> tuple[str, Any]:
    """``(kind, record)`` of a record line; an entry comes as an ``EntryRow``."""
    if line.startswith(_ENTRY_LINE):
        # Most lines of an export: parsed, checked and kept as text in one step. Anything
        # this refuses takes the path below, which accepts other forms or says what is wrong.
        row = _entry_row(line)
        if row is not None:
            return "entry", row
        try:
            record: Any = _EntryLine.model_validate_json(line).data
        except ValidationError:
            pass
        else:
            return "entry", _entry_record(record)
    where = f"{path}, line {number}"
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where} is not JSON: {exc.msg}") from exc
    except RecursionError:
        raise InvalidInput(
            f"{where} nests lists and objects deeper than this reader can follow; "
            f"records nest at most {check.MAX_JSON_DEPTH} levels"
        ) from None
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
        return "entry", _entry_record(record)
    return obj["kind"], record


def import_jsonl(memory: "Memory", path: Path, *, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Load an export into ``memory``: all of it, or nothing when any line is bad.

    Every line is checked before the import commits anything: in one pass
    inside one transaction where the backend has them, else in a pass of its
    own before the writes. Entries are upserted with their vectors in
    batches, messages inserted in batches.

    Raises:
        ConfigError: not an engram export, or a newer format version.
        InvalidInput: the file cannot be read, is not UTF-8 text, or a line is bad
            (the store is unchanged).
    """
    counts = {kind: 0 for kind in BASE_KINDS}
    max_bytes = memory.settings.max_content_bytes
    blobs: dict[str, int] = {}  # id -> size: the blob store must have room for them all
    blob_lines: list[int] = []  # held back, in one pass: written once every line has passed

    def checked(records: Iterable[tuple[int, str, Any, Any]], hold_blobs: bool) -> Iterator[Any]:
        for number, kind, record, embedding in records:
            counts[kind] = counts.get(kind, 0) + 1
            if isinstance(record, Blob):
                blobs[record.id] = record.size
                if hold_blobs:
                    blob_lines.append(number)
                    continue
            yield number, kind, record, embedding

    store = memory.backend
    if type(store).transaction is Store.transaction:  # no transactions: check everything, write nothing
        for _ in checked(_records(path, max_bytes), hold_blobs=False):
            pass
        memory.blobs.check_room(blobs)
        with store.transaction():
            _apply(memory, _records(path, max_bytes), _file_model(path), progress)
        return counts
    # Parsing each line once is a third of an import's time; a bad line rolls back all before it.
    with store.transaction():
        _apply(memory, checked(_records(path, max_bytes), hold_blobs=True), _file_model(path), progress)
        if blob_lines:  # the blob store is outside the transaction: blobs last, when all fit
            memory.blobs.check_room(blobs)
            _apply(memory, _records(path, max_bytes, only=set(blob_lines)), None, progress)
    return counts


class _Batch:
    """Imported records of one kind and the embeddings the file gave them, waiting to be written together."""

    def __init__(self, size: int):
        self.size = size
        self.records: list[Any] = []
        self.vectors: list[Any] = []

    def add(self, record: Any, embedding: Any) -> bool:
        """Hold one more record; True when the batch is full."""
        self.records.append(record)
        self.vectors.append(embedding)
        return len(self.records) >= self.size

    def take(self) -> tuple[list[Any], list[Any]]:
        """The records and their embeddings, leaving the batch empty."""
        taken = self.records, self.vectors
        self.records, self.vectors = [], []
        return taken


def _apply(
    memory: "Memory",
    records: Iterable[tuple[int, str, Any, Any]],
    file_model: Any,
    progress: Callable[[int], None] | None,
) -> None:
    store = memory.backend
    seqs: dict[str, list[tuple[int, int]]] = {}  # session -> [(seq in the file, seq here)]
    # Without embeddings to overlap with the writes, entries go in bigger batches.
    entries = _Batch(ENTRY_BATCH if memory.embedder is None else BATCH)
    messages = _Batch(BATCH)

    # A batch's vectors are embedded while the batch before it is written (embeddings/pipeline.py);
    # leaving by an error writes nothing after it, as the plain loop would.
    overlap: Overlap[Any] = Overlap()

    def submit(batch: list[Any], prepare: Callable[[], Any], write: Callable[[Any, list[Any], Any], None]) -> None:
        def written(prepared: Any) -> None:
            write(memory, batch, prepared)
            if progress:
                progress(len(batch))

        overlap.submit(prepare, written)

    def flush_messages() -> None:
        if messages.records:
            batch, given = messages.take()
            for sent, stored in zip(batch, store.put_messages(batch)):  # now: summaries need the seqs
                seqs.setdefault(sent.session_id, []).append((sent.seq, stored.seq))
            prepare = partial(vectors_io.message_vectors_to_attach, memory, batch, given, file_model)
            submit(batch, prepare, vectors_io.write_message_vectors)

    def flush_entries() -> None:
        if entries.records:
            batch, given = entries.take()
            prepare = partial(vectors_io.entry_vectors_to_attach, memory, batch, given, file_model)
            submit(batch, prepare, vectors_io.write_entry_rows)

    with overlap:
        for _, kind, record, embedding in records:
            if kind == "entry":  # most lines: tested first
                if entries.add(record, embedding):
                    flush_entries()
                continue
            if isinstance(record, Message):
                if messages.add(record, embedding):
                    flush_messages()
                continue
            if kind in CONVERSATION_KINDS:
                flush_messages()  # a summary is re-pointed at the messages before it
                _import_conversation(store, kind, record, seqs)
            else:
                held = record_kinds.BY_NAME[kind]
                _put(held.holder(memory), held, record)  # a blob goes to the blob store
            if progress:
                progress(1)
        flush_entries()
        flush_messages()


def _import_conversation(store: Any, kind: str, record: BaseModel, seqs: dict[str, list[tuple[int, int]]]) -> None:
    """Upsert a summary or profile, insert a checkpoint or run unless it is there (re-importing changes nothing)."""
    if isinstance(record, Summary):
        mapped = [here for there, here in seqs.get(record.session_id, ()) if there <= record.last_seq]
        if mapped:
            record = record.model_copy(update={"last_seq": max(mapped)})
    _put(store, record_kinds.BY_NAME[kind], record)


def _put(store: Any, kind: record_kinds.RecordKind, record: BaseModel) -> None:
    """Write one imported record by its kind's ``put``; a kind that ``keeps_existing``
    (checkpoint, run) is inserted only when its id is not there, so re-importing changes nothing."""
    if kind.keeps_existing and kind.get is not None and getattr(store, kind.get)(kind.identity(record)) is not None:
        return
    getattr(store, kind.put)(record)
