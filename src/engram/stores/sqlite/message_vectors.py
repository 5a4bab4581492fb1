"""Message vectors for the SQLite backend (mixed into ``SQLiteStore``; capability MESSAGE_VECTOR).

Vectors live in ``message_vectors`` (float32 BLOBs keyed by the message's
``seq``) under the store's one ``vector_model``; every change is logged by
triggers in ``message_vector_changes``. Searches run on the one vector
engine (:mod:`engram.stores._vector_log`, :mod:`engram.search.vector`):
one exact index over all messages, loaded on first use, that takes the
changes logged since it last looked (by any process) before each search. A
session or user scope restricts it to that scope's messages (``allowed``),
read through the ``(session_id, seq)`` / ``(user_id, seq)`` indexes, so the
scope holds for vector candidates exactly as it does inside the FTS index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from engram.embeddings.cache import content_hash
from engram.models import Message
from engram.search.query import Node
from engram.search.vector import MESSAGE_EXACT_MAX, MESSAGES
from engram.stores._sql_rows import SQLITE_ROWS
from engram.stores._where import given, where
from engram.stores._vector_log import LoggedMessageVectors
from engram.stores.base import MessageVectorItem, VectorModel
from engram.stores.sqlite import chat_sql as sql_chat
from engram.stores.sqlite.vector_tables import MESSAGE_VECTORS, read_in
from engram.stores.sqlite.vectors import CHANGE_LOG_KEEP, _blob, _vec

_message = SQLITE_ROWS.message

__all__ = ["MESSAGE_EXACT_MAX", "SQLiteMessageVectors"]

_PUT_MESSAGE_VECTORS = (
    "INSERT INTO message_vectors (seq, content_hash, vector)"
    " SELECT m.seq, ?, ? FROM messages m WHERE m.id = ? AND m.content = ?"
    " ON CONFLICT (seq) DO UPDATE SET content_hash = excluded.content_hash, vector = excluded.vector"
)


class SQLiteMessageVectors(LoggedMessageVectors):
    """The MESSAGE_VECTOR primitives of ``SQLiteStore``."""

    _read: Any
    _write: Any
    _check_model: Any

    # -- writes ----------------------------------------------------------------
    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        rows = [(content_hash(i.content), _blob(i.vector), i.message_id, i.content) for i in items]
        with self._write(f"storing {len(items)} message vectors") as conn:
            self._check_model(conn, model)
            # Only where the content is still what was embedded.
            return MESSAGE_VECTORS.store(conn, _PUT_MESSAGE_VECTORS, rows, CHANGE_LOG_KEEP)

    def clear_vectors(self) -> int:
        with self._write("dropping message vectors") as conn:
            n = MESSAGE_VECTORS.clear(conn)
        self._mv_forget()
        return n + super().clear_vectors()  # type: ignore[misc]

    # -- reads -------------------------------------------------------------------
    def get_message_vectors(self, message_ids: Sequence[str]) -> dict[str, Any]:
        sql = "SELECT m.id, v.vector FROM messages m JOIN message_vectors v ON v.seq = m.seq WHERE m.id IN ({marks})"
        return {r[0]: _vec(r[1]).copy() for r in read_in(self._read, "reading message vectors", sql, message_ids)}

    def messages_without_vectors(self, *, batch_size: int = 256) -> Iterator[list[Message]]:
        last = 0
        while rows := self._read(
            "reading messages to embed",
            f"SELECT {sql_chat.MESSAGE_COLUMNS} FROM messages m WHERE m.seq > ? AND m.content != ''"
            " AND NOT EXISTS (SELECT 1 FROM message_vectors v WHERE v.seq = m.seq) ORDER BY m.seq LIMIT ?",
            (last, batch_size),
        ):
            yield [_message(r) for r in rows]
            last = rows[-1][11]

    def count_message_text_matches(
        self, query: Node, *, session_id: str | None, user_id: str | None, cap: int
    ) -> int | None:
        rows = self._read(
            "counting message matches",
            "SELECT count(*) FROM (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ? LIMIT ?)",
            (sql_chat.message_match(query, session_id, user_id), cap),
        )
        return rows[0][0]

    # -- the primitives of LoggedMessageVectors ------------------------------------------
    def _mv_head(self) -> tuple[int, int | None]:
        return MESSAGE_VECTORS.head(self._read)

    def _mv_changes(self, after: int, upto: int) -> list[int]:
        return [
            r[0]
            for r in self._read(
                "reading message vector changes",
                "SELECT DISTINCT message_seq FROM message_vector_changes WHERE seq > ? AND seq <= ?",
                (after, upto),
            )
        ]

    def _mv_vectors(self, seqs: Sequence[int] | None) -> list[tuple[int, bytes]]:
        return MESSAGE_VECTORS.vectors(self._read, seqs)

    def _mv_scope(self, session_id: str | None, user_id: str | None) -> list[int]:
        clauses, params = given([("session_id = ?", session_id), ("user_id = ?", user_id)])
        rows = self._read("scoping messages", f"SELECT seq FROM messages{where(clauses)}", params)
        return [r[0] for r in rows]

    def _mv_messages(self, seqs: Sequence[int]) -> dict[int, Message]:
        sql = f"SELECT {sql_chat.MESSAGE_COLUMNS} FROM messages m WHERE m.seq IN ({{marks}})"
        return {r[11]: _message(r) for r in read_in(self._read, "reading messages", sql, seqs)}

    def _mv_count(self) -> int:
        loaded = self._message_engine().count(MESSAGES)  # loaded: the change log brings it up to date cheaply
        if loaded is not None:
            return loaded
        return MESSAGE_VECTORS.count(self._read)
