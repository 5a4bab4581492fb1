"""Copy everything from one store to another, whatever their backends (``engram copy SRC DST``).

Records keep their ids and timestamps; sessions go first (tasks refer to
them), then tasks, then entries in batches through ``Store.put_entries``,
then the conversation records of backends that have them: messages in
``seq`` order through ``Store.put_messages`` (which skips ids already there
and keeps each ``seq`` where it can), summaries (their ``last_seq`` re-pointed
at the same message in the destination), profiles and checkpoints.
Embeddings come along (``engram._transfer_vectors``): an entry batch is
written with its vectors in one write, messages get theirs after them.
Every write is an upsert by identity, so a copy that stopped half-way can
simply be run again. Afterwards the destination is counted per kind and a
difference raises :class:`~engram.errors.BackendError`.

A kind of record is one :class:`Kind`: what to read from the source, how to
write a batch to the destination and how to count it there, made from its row
in the one table of record kinds (``engram.kinds``). A new kind joins by its
row there; only one that needs more than "iterate, put, count" adds an entry
to :data:`_SPECIAL`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from engram import _transfer_vectors as vectors_io
from engram import kinds as record_kinds
from engram._time import utcnow
from engram.errors import BackendError, ConfigError
from engram.stores.base import CONVERSATION, MESSAGE_VECTOR, Counts, MessageQuery, Store

if TYPE_CHECKING:
    from engram.memory import Memory

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Kind:
    """One kind of record that ``copy_store`` moves."""

    name: str
    read: Callable[[Store, int], Iterator[Any]]  # (source, batch_size) -> records
    write: Callable[[Store, Sequence[Any]], None]  # (destination, batch) -> None
    count: Callable[[Counts], int] | None  # how many the counts of a store say there are (None: not counted)
    # Instead of ``write`` where the source must be read too (vectors): (src, dst, batch) -> None
    carry: Callable[["Memory", "Memory", Sequence[Any]], None] | None = None
    # What read and write are given of a Memory: its database, or its blob store's records.
    holder: Callable[["Memory"], Any] = lambda memory: memory.backend


def _put_each(put: Callable[[Store, Any], None]) -> Callable[[Store, Sequence[Any]], None]:
    def write(store: Store, batch: Sequence[Any]) -> None:
        for record in batch:
            put(store, record)

    return write


def _put_entries(store: Store, batch: Sequence[Any]) -> None:
    store.put_entries(batch, now=utcnow())


def _copy_entries(src: "Memory", dst: "Memory", batch: Sequence[Any]) -> None:
    """Entries and their vectors in one write: kept when the destination's model is theirs
    (or it has none yet), and whatever lacks a usable one embedded when ``dst`` has an embedder."""
    vectors = vectors_io.entry_vectors(src.backend, batch)
    model = src.backend.vector_model() if any(v is not None for v in vectors) else None
    vectors_io.put_entries(dst, batch, vectors, model)


def _copy_messages(src: "Memory", dst: "Memory", batch: Sequence[Any]) -> None:
    dst.backend.put_messages(batch)  # in seq order; ids already there are skipped
    vectors = vectors_io.message_vectors(src.backend, batch) if MESSAGE_VECTOR in src.backend.capabilities else []
    model = src.backend.vector_model() if any(v is not None for v in vectors) else None
    vectors_io.put_message_vectors(dst, batch, vectors or [None] * len(batch), model)


def _conversation(read: Callable[[Store], Iterator[Any]]) -> Callable[[Store, int], Iterator[Any]]:
    """``read`` on a source with conversation records; nothing from one without."""
    return lambda s, n: read(s) if CONVERSATION in s.capabilities else iter(())


def _summaries_with_anchor(src: Store) -> Iterator[tuple[Any, str | None]]:
    """Each summary with the id of the newest message it covers in ``src`` (None: none left)."""
    for summary in src.iter_summaries():
        newest = src.list_messages(MessageQuery(summary.session_id, limit=1, before_seq=summary.last_seq + 1))
        yield summary, newest[0].id if newest else None


def _put_summaries(dst: Store, batch: Sequence[tuple[Any, str | None]]) -> None:
    # The destination may have numbered the messages differently (it held
    # others): point last_seq at the same message there.
    for summary, anchor in batch:
        there = dst.get_message(anchor) if anchor is not None else None
        if there is not None and there.seq != summary.last_seq:
            summary = summary.model_copy(update={"last_seq": there.seq})
        dst.put_summary(summary)


def _put_checkpoint(dst: Store, checkpoint: Any) -> None:
    existing = dst.get_checkpoint(checkpoint.id)
    if existing == checkpoint:
        return
    if existing is not None:
        if existing.status == "resumed" and checkpoint.status == "paused":
            return  # resumed in the destination: a run resumes once, a copy never re-opens it
        dst.delete_checkpoint(checkpoint.id)  # e.g. resumed in the source since the last copy
    dst.put_checkpoint(checkpoint)


def _put_run(dst: Store, run: Any) -> None:
    existing = dst.get_run(run.id)
    if existing is None:
        dst.put_run(run)
    elif existing != run and existing.updated_at < run.updated_at:
        # Moved in the source since the last copy: take its status, as a move (never re-opening a
        # run the destination saw resumed later).
        dst.move_run(run.id, from_statuses=(existing.status,), status=run.status,
                     checkpoint_id=run.checkpoint_id, now=run.updated_at)  # fmt: skip


def _read(kind: record_kinds.RecordKind) -> Callable[[Store, int], Iterator[Any]]:
    """Every record of ``kind`` in a source (none from a backend without it), a batch at a time where paged."""

    def read(store: Store, batch_size: int) -> Iterator[Any]:
        if not kind.held_by(store):
            return iter(())
        iterate = getattr(store, kind.iterate)
        return iterate(batch_size=batch_size) if kind.paged else iterate()

    return read


def _write(kind: record_kinds.RecordKind) -> Callable[[Store, Sequence[Any]], None]:
    """A batch into the destination by ``kind``'s ``put`` (one call for a batch, or one per record)."""
    if kind.put_many:
        return lambda store, batch: getattr(store, kind.put)(batch)
    return _put_each(lambda store, record: getattr(store, kind.put)(record))


def _counter(kind: record_kinds.RecordKind) -> Callable[[Counts], int] | None:
    if not kind.counts:
        return None  # blobs: each one is checked against its sha256 as it is read instead
    return lambda counts: sum(getattr(counts, field) for field in kind.counts)


# What a kind needs beyond its row in engram.kinds: (read, write, carry); None takes the default.
_SPECIAL: dict[str, tuple[Any, Any, Any]] = {
    "entry": (None, _put_entries, _copy_entries),
    "message": (None, None, _copy_messages),  # in seq order; ids already there are skipped
    "summary": (_conversation(_summaries_with_anchor), _put_summaries, None),
    "checkpoint": (None, _put_each(_put_checkpoint), None),
    "run": (None, _put_each(_put_run), None),
}


def _kind(kind: record_kinds.RecordKind) -> Kind:
    read, write, carry = _SPECIAL.get(kind.name, (None, None, None))
    return Kind(kind.name, read or _read(kind), write or _write(kind), _counter(kind), carry, kind.holder)


# Every kind with records of its own, in the table's order (vectors come with their carriers).
KINDS: list[Kind] = [_kind(kind) for kind in record_kinds.LINE_KINDS]
_BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}


def _batches(records: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(records, size)):
        yield batch


def count_records(memory: "Memory") -> dict[str, int]:
    """How many records of each kind ``memory`` holds (for a progress bar's total)."""
    counts = memory.backend.counts(now=utcnow())
    return {kind.name: kind.count(counts) for kind in KINDS if kind.count is not None}


def copy_store(
    src: "Memory", dst: "Memory", *, batch_size: int = 1000, progress: Progress | None = None
) -> dict[str, int]:
    """Copy every record of ``src`` into ``dst``; returns how many of each kind were copied.

    Ids and timestamps are kept and every write is an upsert, so running it
    again changes nothing. Copy from a store that is not being written to:
    records written during the copy may or may not come along.

    Args:
        batch_size: records read and written per batch (entries go in one
            ``put_entries`` transaction per batch).
        progress: called with the number of records just copied.

    Raises:
        ConfigError: ``src`` and ``dst`` are the same store, or a bad batch size.
        BackendError: after the copy, the destination's counts do not add up.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if src.backend is dst.backend or src.url == dst.url:
        raise ConfigError(f"source and destination are the same store ({src.url})")
    before = dst.backend.counts(now=utcnow())
    copied: dict[str, int] = {}
    for kind in KINDS:
        copied[kind.name] = 0
        for batch in _batches(kind.read(kind.holder(src), batch_size), batch_size):
            if kind.carry is not None:
                kind.carry(src, dst, batch)
            else:
                kind.write(kind.holder(dst), batch)
            copied[kind.name] += len(batch)
            if progress:
                progress(len(batch))
    verify(before, dst.backend.counts(now=utcnow()), copied, dst.url)
    # A kind outside the database (blobs) is named when some came along, as in an export's counts.
    return {name: n for name, n in copied.items() if n or _BY_NAME[name].count is not None}


def verify(before: Counts, after: Counts, copied: dict[str, int], where: str) -> None:
    """Check the destination's counts against what was copied.

    Into an empty destination, each kind must count exactly what was copied;
    into one that held records, at least what was copied and at most the old
    count plus the copied ones (records already there are upserted, not added).

    Raises:
        BackendError: naming every kind that does not add up.
    """
    problems = []
    for kind in KINDS:
        if kind.count is None:
            continue
        had, has, n = kind.count(before), kind.count(after), copied.get(kind.name, 0)
        low, high = (n, n) if had == 0 else (n, had + n)
        if not low <= has <= high:
            expected = f"{n}" if low == high else f"between {low} and {high}"
            problems.append(f"{kind.name}: copied {n}, the destination holds {has} (expected {expected})")
    if problems:
        raise BackendError(f"copy into {where} did not verify: " + "; ".join(problems))
