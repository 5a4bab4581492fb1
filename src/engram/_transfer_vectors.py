"""Embeddings in export files and copies (optional fields of format version 1), kept apart from the record kinds.

The header names ``embedding_model`` (``{"name", "dimensions"}``, the one
model of a store's entry and message vectors); an entry or message line with
a vector carries it beside its data as ``"embedding"``: base64 of
little-endian float32. On import (and copy), vectors of the model the target
store uses are kept; records without a usable one are embedded in batches
when the target has an embedder. Files written before embeddings simply have
none.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engram import kinds as record_kinds
from engram.errors import InvalidInput
from engram.models import Entry, Message
from engram.search.context import embedded_text
from engram.stores.base import MESSAGE_VECTOR, VECTOR, MessageVectorItem, VectorItem, VectorModel
from engram.stores.contracts.entries import EntryRow

if TYPE_CHECKING:
    from engram.memory import Memory

BATCH = 1000


def header_fields(store: Any) -> dict[str, Any]:
    """What the export header says about embeddings."""
    model = store.vector_model()
    return {} if model is None else {"embedding_model": {"name": model.name, "dimensions": model.dimensions}}


def header_model(header: dict[str, Any]) -> VectorModel | None:
    described = header.get("embedding_model")
    if isinstance(described, dict) and isinstance(described.get("name"), str) and isinstance(described.get("dimensions"), int):
        return VectorModel(described["name"], described["dimensions"])
    return None


def encode(vector: Any) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _lookup(carrier: str) -> Callable[[Any, Sequence[Any]], list[Any]]:
    """``(store, records) -> their vectors`` (None where one has none), in order, for the records of
    ``carrier``: its vector kind's lookup (``get``-by-ids method) keyed by the carrier's identity."""
    carried, vectors = record_kinds.BY_NAME[carrier], record_kinds.VECTORS_OF[carrier]

    def lookup(store: Any, records: Sequence[Any]) -> list[Any]:
        idents = [carried.identity(r) for r in records]
        found = getattr(store, vectors.iterate)(idents)
        return [found.get(i) for i in idents]

    return lookup


# The kinds whose export lines carry an "embedding", each with its lookup (engram.kinds).
VECTORS_OF: dict[str, Callable[[Any, Sequence[Any]], list[Any]]] = {c: _lookup(c) for c in record_kinds.VECTORS_OF}


def entry_vectors(store: Any, entries: Sequence[Entry]) -> list[Any]:
    """The vectors of ``entries`` in ``store`` (None where one has none), in order."""
    return VECTORS_OF["entry"](store, entries)


def message_vectors(store: Any, messages: Sequence[Message]) -> list[Any]:
    """The vectors of ``messages`` in ``store`` (None where one has none), in order."""
    return VECTORS_OF["message"](store, messages)


def with_vectors(
    store: Any, records: Iterator[Any], lookup: Callable[[Any, Sequence[Any]], list[Any]] = entry_vectors
) -> Iterator[tuple[Any, Any]]:
    """Records paired with their vectors (None without one), looked up a batch at a time."""
    batch: list[Any] = []

    def drain() -> Iterator[tuple[Any, Any]]:
        yield from zip(batch, lookup(store, batch))
        batch.clear()

    for record in records:
        batch.append(record)
        if len(batch) >= BATCH:
            yield from drain()
    if batch:
        yield from drain()


def line_embedding(path: Path, number: int, line: str, model: VectorModel | None) -> np.ndarray | None:
    """The vector an entry line carries, checked against the header's model."""
    if '"embedding"' not in line:
        return None
    text = json.loads(line).get("embedding")
    if text is None:
        return None
    try:
        vector = np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4").astype(np.float32)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{path}, line {number}: embedding is not base64 float32: {exc}") from exc
    if model is None or len(vector) != model.dimensions:
        raise InvalidInput(
            f"{path}, line {number}: embedding has {len(vector)} dimensions, but the header's embedding_model "
            f"says {None if model is None else model.dimensions}"
        )
    return vector


def _chosen(
    memory: "Memory",
    capability: str,
    contents: Sequence[str],
    embeddings: Sequence[Any],
    file_model: VectorModel | None,
    skip_empty: bool,
) -> tuple[list[tuple[int, Any]], VectorModel | None]:
    """``(position, vector)`` to attach and their model: the given vectors when they are of
    the target's model (or it has none yet), embeddings of the rest when the target has an embedder."""
    store = memory.backend
    if capability not in store.capabilities:
        return [], None
    embedder = memory.embedder
    target = VectorModel(embedder.name, embedder.dimensions) if embedder is not None else store.vector_model()
    usable = file_model is not None and (target is None or target == file_model)
    kept = [(i, v) for i, v in enumerate(embeddings) if usable and v is not None]
    if embedder is None:
        return kept, file_model if kept else None
    have = {i for i, _ in kept}
    rest = [i for i in range(len(contents)) if i not in have and (contents[i] or not skip_empty)]
    if rest:
        kept += list(zip(rest, memory.embed([contents[i] for i in rest])))
    return kept, target


def entry_vectors_to_attach(
    memory: "Memory", entries: Sequence[Entry], embeddings: Sequence[Any], file_model: VectorModel | None
) -> tuple[list[VectorItem], VectorModel | None]:
    """The vectors to store with ``entries`` (see :func:`_chosen`), for ``put_entries_with_vectors``."""
    texts = [embedded_text(e.content, e.context) for e in entries]
    found, model = _chosen(memory, VECTOR, texts, embeddings, file_model, False)
    return [VectorItem.of(entries[i], v) for i, v in found], model


def put_entries(
    memory: "Memory", entries: Sequence[Entry], embeddings: Sequence[Any], file_model: VectorModel | None
) -> None:
    """Upsert imported or copied entries and their vectors in one write (both or neither)."""
    write_entries(memory, entries, entry_vectors_to_attach(memory, entries, embeddings, file_model))


def write_entries(
    memory: "Memory", entries: Sequence[Entry], prepared: tuple[list[VectorItem], VectorModel | None]
) -> None:
    """The write half of :func:`put_entries`; ``prepared`` is what :func:`entry_vectors_to_attach` returned."""
    from engram._time import utcnow

    items, model = prepared
    if items and model is not None:
        memory.backend.put_entries_with_vectors(entries, items, now=utcnow(), model=model)
    else:
        memory.backend.put_entries(entries, now=utcnow())


def write_entry_rows(
    memory: "Memory", rows: Sequence[EntryRow], prepared: tuple[list[VectorItem], VectorModel | None]
) -> None:
    """:func:`write_entries` of imported rows: as rows (``Store.put_entry_rows``) unless vectors go with them."""
    items, model = prepared
    if items and model is not None:
        write_entries(memory, [row.entry() for row in rows], prepared)
    else:
        memory.backend.put_entry_rows(rows)


def message_vectors_to_attach(
    memory: "Memory", messages: Sequence[Message], embeddings: Sequence[Any], file_model: VectorModel | None
) -> tuple[list[tuple[int, Any]], VectorModel | None]:
    """``(position, vector)`` of ``messages`` and their model (see :func:`_chosen`); empty ones are not embedded."""
    return _chosen(memory, MESSAGE_VECTOR, [m.content for m in messages], embeddings, file_model, True)


def write_message_vectors(
    memory: "Memory", messages: Sequence[Message], prepared: tuple[list[tuple[int, Any]], VectorModel | None]
) -> None:
    """The write half of :func:`put_message_vectors`."""
    found, model = prepared
    if found and model is not None:
        memory.backend.put_message_vectors(
            [MessageVectorItem(messages[i].id, messages[i].content, v) for i, v in found], model=model
        )


def put_message_vectors(
    memory: "Memory", messages: Sequence[Message], embeddings: Sequence[Any], file_model: VectorModel | None
) -> None:
    """Attach the vectors of imported or copied messages (embedding the rest when the target has an embedder)."""
    write_message_vectors(memory, messages, message_vectors_to_attach(memory, messages, embeddings, file_model))
