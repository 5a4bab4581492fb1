"""Message vector search shared by the server backends (PostgreSQL, Redis; capability MESSAGE_VECTOR).

The server holds one float32 vector per message, keyed by the message's
``seq``, plus a change counter and log exactly like the entry vectors of
:mod:`engram.stores._vector_log`: every write that adds or drops a message
vector (``put_message_vectors``, deleting or pruning its message) logs the
seq under the next value of the counter. The search machinery is
:class:`~engram.stores._vector_log.LoggedVectors` itself, run over a single
"namespace" (:data:`MESSAGES`) with its own state, so the two indexes of a
store never mix; a session/user scope is handed to it as the "metadata"
filter and turned into the ``allowed`` keys of that scope. The message index
stays exact (see ``engram.stores._sqlite_message_vectors``).

A backend implements:

* ``_mv_head() -> (newest, oldest)`` and ``_mv_changes(after, upto) -> [seq]``:
  the message vector change log.
* ``_mv_vectors(seqs) -> [(seq, float32 bytes)]`` (``seqs=None``: all).
* ``_mv_scope(session_id, user_id) -> [seq]``: the messages of a scope.
* ``_mv_messages(seqs) -> {seq: Message}``: those still stored.
* ``_mv_count() -> int``: message vectors stored.

and calls :meth:`LoggedMessageVectors._mv_forget` from ``clear_vectors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engram._time import utcnow
from engram.models import Message
from engram.stores._sqlite_message_vectors import MESSAGE_EXACT_MAX
from engram.stores._vector_log import LoggedVectors

MESSAGES = "messages"  # the one namespace of the message index


class _MessageLog(LoggedVectors):
    """``LoggedVectors`` over a backend's message vectors (keys: message seqs)."""

    vector_exact_max = MESSAGE_EXACT_MAX

    def __init__(self, backend: Any):
        self._backend = backend

    def _vl_head(self) -> tuple[int, int | None]:
        return self._backend._mv_head()

    def _vl_changes(self, after: int, upto: int) -> list[tuple[str, int]]:
        return [(MESSAGES, seq) for seq in self._backend._mv_changes(after, upto)]

    def _vl_vectors(self, namespace: str, keys: Sequence[int] | None) -> list[tuple[int, bytes]]:
        return self._backend._mv_vectors(keys)

    def _vl_namespaces(self) -> list[str]:
        return [MESSAGES]

    def _vl_allowed(self, namespace: str, metadata: dict[str, Any], now: datetime) -> list[int]:
        return self._backend._mv_scope(metadata.get("session_id"), metadata.get("user_id"))

    def _vl_entries(self, keys: Sequence[int], now: datetime) -> dict[int, Any]:
        return self._backend._mv_messages(keys)

    def _vl_count(self, namespace: str | None) -> int:
        return self._backend._mv_count()


class LoggedMessageVectors:
    """``search_message_vectors`` and ``count_message_vectors`` over a server-side log (see above)."""

    def _mv_log(self) -> _MessageLog:
        log = self.__dict__.get("_message_vector_log")
        if log is None:
            log = self.__dict__.setdefault("_message_vector_log", _MessageLog(self))
        return log

    def _mv_forget(self) -> None:
        """Drop the loaded message index (after ``clear_vectors``)."""
        self._mv_log()._vl_forget()

    def count_message_vectors(self) -> int:
        return self._mv_count()

    def search_message_vectors(
        self, vector: Any, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        scope = {k: v for k, v in (("session_id", session_id), ("user_id", user_id)) if v is not None}
        return self._mv_log().search_vector(  # type: ignore[return-value]
            vector, namespace=MESSAGES, metadata=scope, limit=limit, now=utcnow()
        )

    # Provided by the backend (see the module docstring).
    def _mv_head(self) -> tuple[int, int | None]:
        raise NotImplementedError

    def _mv_changes(self, after: int, upto: int) -> list[int]:
        raise NotImplementedError

    def _mv_vectors(self, seqs: Sequence[int] | None) -> list[tuple[int, bytes]]:
        raise NotImplementedError

    def _mv_scope(self, session_id: str | None, user_id: str | None) -> list[int]:
        raise NotImplementedError

    def _mv_messages(self, seqs: Sequence[int]) -> dict[int, Message]:
        raise NotImplementedError

    def _mv_count(self) -> int:
        raise NotImplementedError
