"""Vector primitives of the JSON-files backend (``json://``), mixed into ``JsonStore``.

The vectors live in ``vectors.json`` beside the other files (same envelope,
``"kind": "vectors"``, plus ``"model": {"name", "dimensions"}``), one record
a line: ``{"namespace", "key", "content_hash" (hex blake2b-128 of the text
embedded: the entry's context, then its content; the content alone without
one), "vector" (base64 of little-endian float32)}``. It is written like
every other file (under the lock, temp file + fsync + rename) and reloaded
when another process replaced it. In memory the vectors sit in the working
copy (a ``MemoryStore``, so the in-process index of ``engram.search.vector``
searches them); a vector whose entry is gone or whose content or context
no longer matches its ``content_hash`` is stale and is dropped, in memory
and (at the next entries write) from the file.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from engram.embeddings.cache import content_hash
from engram.errors import BackendError
from engram.models import Entry
from engram.search.context import embedded_text
from engram.search.vector import DEFAULT_EXACT_MAX
from engram.stores.base import MetadataFilter, VectorItem, VectorModel
from engram.stores.jsonfiles.snapshot import FILES_WRITTEN

VECTORS_FILE = "vectors"  # vectors.json


def render_vector_file(kind: str, model: VectorModel | None, records: Iterable[tuple[dict[str, Any], str, Any]]) -> str:
    """The text of a vectors file: the envelope, then one ``ids + content_hash + vector`` record a line."""
    head: dict[str, Any] = {"format": "engram-json", "version": 1, "kind": kind}
    if model is not None:
        head["model"] = {"name": model.name, "dimensions": model.dimensions}
    lines = [
        json.dumps(
            {
                **ids,
                "content_hash": content_hash(content).hex(),
                "vector": base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii"),
            },
            ensure_ascii=False,
        )
        for ids, content, vector in records
    ]
    text = json.dumps(head, ensure_ascii=False)[:-1]
    return f'{text}, "records": [\n' + ",\n".join(lines) + "\n]}\n" if lines else f'{text}, "records": []}}\n'


def read_vector_file(path: Path, kind: str) -> tuple[VectorModel, list[Any]] | None:
    """The model and records of a vectors file; None when it is absent or names no model."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != kind or not isinstance(data.get("records"), list):
        raise BackendError(f"{path} is not an engram JSON {kind.replace('_', ' ')} file")
    described = data.get("model")
    if not isinstance(described, dict):
        return None
    try:
        return VectorModel(str(described["name"]), int(described["dimensions"])), data["records"]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"{path}: a malformed model record: {exc}") from exc


def decode_fresh_vector(record: dict[str, Any], content: str, model: VectorModel) -> np.ndarray | None:
    """The record's vector when it was embedded from ``content`` and has the model's size, else None (stale)."""
    if content_hash(content).hex() != record["content_hash"]:
        return None
    vector = np.frombuffer(base64.b64decode(record["vector"]), dtype="<f4")
    return vector.astype(np.float32) if len(vector) == model.dimensions else None


def render_vectors(mem: Any, also: Iterable[tuple[dict[str, Any], str, Any]] = ()) -> str:
    """The text of vectors.json from a ``MemoryStore``'s fresh vectors (and the records ``also``)."""
    state = mem._vstate()
    fresh = (
        ({"namespace": namespace, "key": key}, content, vector)
        for (namespace, key), (_, content, vector) in state["vectors"].items()
        if mem._fresh((namespace, key), content)
    )
    return render_vector_file("vectors", state["model"], itertools.chain(also, fresh))


def restore_vector_file(path: Path, kind: str, item_of: Callable[[Any, VectorModel], Any], put: Any) -> None:
    """Load a vector file (``kind``: its envelope's kind) into the working copy: ``item_of(record,
    model)`` is the item to ``put``, None for a stale vector (its carrier gone or rewritten)."""
    found = read_vector_file(path, kind)
    if found is None:
        return
    model, records = found
    try:
        items = [item for record in records if (item := item_of(record, model)) is not None]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"{path}: a malformed {kind[:-1].replace('_', ' ')} record: {exc}") from exc
    put(items, model=model)


def restore_vectors(mem: Any, path: Path) -> None:
    """Load vectors.json into a ``MemoryStore`` whose entries are loaded; stale vectors are skipped."""

    def item_of(record: Any, model: VectorModel) -> VectorItem | None:
        entry = mem._entries.get((record["namespace"], record["key"]))
        if entry is None:
            return None
        vector = decode_fresh_vector(record, embedded_text(entry.content, entry.context), model)
        return None if vector is None else VectorItem.of(entry, vector)

    restore_vector_file(path, "vectors", item_of, mem.put_vectors)


class JsonVectors:
    """Implements the VECTOR primitives of ``Store`` for ``JsonStore``."""

    # Provided by JsonStore.
    _writing: Any  # (*kinds) -> context manager yielding the MemoryStore
    _reading: Any  # () -> the MemoryStore, fresh from the files
    _write_file: Any  # (kind, text) -> None, under the lock
    put_entries: Any

    vector_exact_max: int = DEFAULT_EXACT_MAX

    def _mem_for_vectors(self) -> Any:
        mem = self._reading()
        mem.vector_exact_max = self.vector_exact_max
        return mem

    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        with self._writing(*FILES_WRITTEN["put_vectors"]) as mem:
            mem.vector_exact_max = self.vector_exact_max
            return mem.put_vectors(items, model=model)

    def put_entries_with_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], *, now: datetime, model: VectorModel
    ) -> list[Entry]:
        if not vectors:
            return self.put_entries(entries, now=now)
        # Two files, renamed into place in this order under the lock: vectors.json, holding the
        # new vectors and the ones they replace, then entries.json. Loading keeps, per entry, the
        # vector of the content it holds: a crash between the two renames leaves the old entries
        # with their old vectors (the new ones belong to no entry), after both the new with the new.
        with self._writing("entries") as mem:
            mem.vector_exact_max = self.vector_exact_max
            held = mem._vstate()["vectors"]
            replaced = [
                ({"namespace": i.namespace, "key": i.key}, held[(i.namespace, i.key)][1], held[(i.namespace, i.key)][2])
                for i in vectors
                if (i.namespace, i.key) in held
            ]
            stored = mem.put_entries_with_vectors(entries, vectors, now=now, model=model)
            self._write_file(VECTORS_FILE, render_vectors(mem, replaced))
        return stored

    def search_vector(
        self, vector: np.ndarray, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        return self._mem_for_vectors().search_vector(
            vector, namespace=namespace, metadata=metadata, limit=limit, now=now
        )
