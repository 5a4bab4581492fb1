"""Message vectors of the JSON-files backend (``json://``; capability MESSAGE_VECTOR), mixed into ``JsonStore``.

They live in ``message_vectors.json`` (same envelope, ``"kind":
"message_vectors"``, plus ``"model"``, the store's one model, also recorded
in ``vectors.json``), one record a line: ``{"message_id", "content_hash"
(hex blake2b-128 of the content embedded), "vector" (base64 of little-endian
float32)}``. The file is written like every other one (under the lock, temp
file + fsync + rename) and reloaded when another process replaced it. In
memory the vectors sit in the working copy (a ``MemoryStore``, see
``engram.stores.memory.message_vectors``); a vector whose message is gone
is stale, and is dropped from the file whenever ``messages.json`` is written
(a history deletion, a prune).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engram.search.query import Node
from engram.stores.base import MessageVectorItem, VectorModel
from engram.stores.jsonfiles.snapshot import FILES_WRITTEN
from engram.stores.jsonfiles.vectors import decode_fresh_vector, render_vector_file, restore_vector_file

MESSAGE_VECTORS_FILE = "message_vectors"  # message_vectors.json


def render_message_vectors(mem: Any) -> str:
    """The text of message_vectors.json from a ``MemoryStore``'s fresh message vectors."""
    return render_vector_file(
        "message_vectors",
        mem._vstate()["model"],
        (
            ({"message_id": message_id}, content, vector)
            for message_id, (_, content, vector) in mem._mvstate()["vectors"].items()
            if mem._message_fresh(message_id, content)
        ),
    )


def restore_message_vectors(mem: Any, path: Path) -> None:
    """Load message_vectors.json into a ``MemoryStore`` whose messages are loaded; stale vectors are skipped."""

    def item_of(record: Any, model: VectorModel) -> MessageVectorItem | None:
        message = mem._chat.by_id.get(record["message_id"])
        vector = None if message is None else decode_fresh_vector(record, message.content, model)
        return None if vector is None else MessageVectorItem(message.id, message.content, vector)

    restore_vector_file(path, "message_vectors", item_of, mem.put_message_vectors)


def drop_stale_message_vectors(mem: Any) -> bool:
    """Sweep vectors whose message is gone from the working copy; True when any went."""
    state = mem._mvstate()
    if not state["vectors"]:
        return False
    before = len(state["vectors"])
    mem.count_message_vectors()  # sweeps
    return len(state["vectors"]) != before


class JsonMessageVectors:
    """Implements the MESSAGE_VECTOR primitives of ``Store`` for ``JsonStore``."""

    # Provided by JsonStore.
    _writing: Any  # (*kinds) -> context manager yielding the MemoryStore
    _reading: Any  # () -> the MemoryStore, fresh from the files

    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        with self._writing(*FILES_WRITTEN["put_message_vectors"]) as mem:
            return mem.put_message_vectors(items, model=model)

    def count_message_text_matches(
        self, query: Node, *, session_id: str | None, user_id: str | None, cap: int
    ) -> int | None:
        return None
