"""Embeddings in export files (optional fields of format version 1), kept apart from the record kinds.

The header names ``embedding_model`` (``{"name", "dimensions"}``); an entry
line with a vector carries it beside its data as ``"embedding"``: base64 of
little-endian float32. On import, vectors of the model the target store uses
are kept; entries without a usable one are embedded in batches when the
target has an embedder. Files written before embeddings simply have none.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engram.errors import InvalidInput
from engram.models import Entry
from engram.stores.base import VECTOR, VectorItem, VectorModel

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


def with_vectors(store: Any, entries: Iterator[Any]) -> Iterator[tuple[Any, Any]]:
    """Entries paired with their vectors (None without one), looked up a batch at a time."""
    batch: list[Any] = []

    def drain() -> Iterator[tuple[Any, Any]]:
        vectors = store.get_vectors([(e.namespace, e.key) for e in batch])
        for e in batch:
            yield e, vectors.get((e.namespace, e.key))
        batch.clear()

    for entry in entries:
        batch.append(entry)
        if len(batch) >= BATCH:
            yield from drain()
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


def import_vectors(
    memory: "Memory", entries: Sequence[Entry], embeddings: Sequence[Any], file_model: VectorModel | None
) -> None:
    """Keep the file's vectors when they are of the target's model; embed the rest when possible."""
    store = memory.backend
    if VECTOR not in store.capabilities:
        return
    embedder = memory.embedder
    recorded = store.vector_model()
    target = VectorModel(embedder.name, embedder.dimensions) if embedder is not None else recorded
    usable = file_model is not None and (target is None or target == file_model)
    kept = [
        VectorItem(e.namespace, e.key, e.content, v) for e, v in zip(entries, embeddings) if usable and v is not None
    ]
    if kept:
        store.put_vectors(kept, model=file_model)  # type: ignore[arg-type]
    if embedder is not None:
        have = {(i.namespace, i.key) for i in kept}
        rest = [e for e in entries if (e.namespace, e.key) not in have]
        if rest:
            vectors = memory.embed([e.content for e in rest])
            store.put_vectors(
                [VectorItem(e.namespace, e.key, e.content, v) for e, v in zip(rest, vectors)],
                model=VectorModel(embedder.name, embedder.dimensions),
            )
