"""Message vectors for the in-process backend (mixed into ``MemoryStore``; capability MESSAGE_VECTOR).

Each vector remembers the message content it embeds; one whose message was
deleted (or pruned) is stale, never returned, and dropped when a search
meets it. The model is the store's one ``vector_model`` (shared with entry
vectors through ``MemoryVectors``' state). Searches run on the one vector
engine over the vectors held here, in one exact index as every backend's
message vectors (:data:`~engram.search.vector.MESSAGE_EXACT_MAX`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from engram.models import Message
from engram.search.query import Node
from engram.search.vector import MESSAGE_EXACT_MAX, MESSAGES
from engram.stores._held_vectors import HeldVectors, held_state
from engram.stores.base import MessageVectorItem, VectorModel


def _new_message_state() -> dict[str, Any]:
    held = HeldVectors(MESSAGES, exact_max=MESSAGE_EXACT_MAX)
    return {"held": held, "vectors": held.vectors}


class MemoryMessageVectors:
    """The MESSAGE_VECTOR primitives of ``MemoryStore``; reads its chat state under ``_lock``."""

    _lock: Any
    _chat: Any
    _vstate: Any
    _record_vector_model: Any

    def _mvstate(self) -> dict[str, Any]:
        """``held`` (one namespace, exact) and its ``vectors`` by message id."""
        return held_state(self, "_message_vectors_state", _new_message_state)

    def _message_fresh(self, message_id: str, content: str) -> bool:
        m = self._chat.by_id.get(message_id)
        return m is not None and m.content == content

    def _sweep_messages(self, state: dict[str, Any]) -> None:
        state["held"].sweep(self._message_fresh)

    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        vstate = self._vstate()
        state = self._mvstate()
        with self._lock, vstate["lock"]:
            self._record_vector_model(vstate, model)
            stored = 0
            for item in items:
                if self._message_fresh(item.message_id, item.content):
                    state["held"].put(item.message_id, item.content, item.vector)
                    stored += 1
        return stored

    def clear_vectors(self) -> int:
        state = self._mvstate()
        with self._lock:
            n = state["held"].clear()
        return n + super().clear_vectors()  # type: ignore[misc]

    def get_message_vectors(self, message_ids: Sequence[str]) -> dict[str, Any]:
        state = self._mvstate()
        with self._lock:
            self._sweep_messages(state)
            return {i: state["vectors"][i][2].copy() for i in message_ids if i in state["vectors"]}

    def count_message_vectors(self) -> int:
        state = self._mvstate()
        with self._lock:
            self._sweep_messages(state)
            return len(state["vectors"])

    def messages_without_vectors(self, *, batch_size: int = 256) -> Iterator[list[Message]]:
        state = self._mvstate()
        with self._lock:
            self._sweep_messages(state)
            missing = sorted(
                (m for m in self._chat.by_id.values() if m.content and m.id not in state["vectors"]),
                key=lambda m: m.seq,
            )
        for i in range(0, len(missing), batch_size):
            yield missing[i : i + batch_size]

    def count_message_text_matches(
        self, query: Node, *, session_id: str | None, user_id: str | None, cap: int
    ) -> int | None:
        return None  # scoring a scan costs what counting it would

    def search_message_vectors(
        self, vector: Any, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        state = self._mvstate()
        with self._lock:
            self._sweep_messages(state)
            held = state["held"]
            scoped = session_id is not None or user_id is not None

            def scope(_: str) -> list[int]:
                chat = self._chat
                pool = chat.by_session.get(session_id, ()) if session_id is not None else chat.by_id.values()
                mine = (m for m in pool if user_id is None or m.user_id == user_id)
                return [held.vectors[m.id][0] for m in mine if m.id in held.vectors]

            by_id = self._chat.by_id
            return [(by_id[i], s) for i, s in held.search(vector, [MESSAGES], limit, scope if scoped else None)]
