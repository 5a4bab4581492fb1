"""Message vectors for the SQLite backend (mixed into ``SQLiteStore``; capability MESSAGE_VECTOR).

Vectors live in ``message_vectors`` (float32 BLOBs keyed by the message's
``seq``) under the store's one ``vector_model``. Searches run on one
in-memory :class:`~engram.search.vector.VectorIndex` over all messages,
loaded on first use; every change to ``message_vectors`` is logged by
triggers in ``message_vector_changes``, and before each search the index
takes the changes logged since it last looked (by any process), as the
entry index does with ``vector_changes``. A session or user scope restricts
the index to that scope's messages (``allowed``), read through the
``(session_id, seq)`` / ``(user_id, seq)`` indexes, so the scope holds for
vector candidates exactly as it does inside the FTS index.

The message index stays exact (:data:`MESSAGE_EXACT_MAX`): most message
searches are scoped to a session or a user, and a scope is scanned exactly
anyway, while an HNSW graph costs ~0.5-1.3 ms per vector to build and,
unlike entry graphs, would not be saved, so every process would pay it on
its first search. An unscoped scan is ~0.06 ms per 1k vectors (384 dims).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from engram.embeddings.cache import content_hash
from engram.models import Message
from engram.search.query import Node
from engram.search.vector import VectorIndex
from engram.stores import _sql_chat as sql
from engram.stores._sqlite_chat import _message
from engram.stores._sqlite_vectors import CHANGE_LOG_KEEP, _blob, _chunks, _vec
from engram.stores.base import MessageVectorItem, VectorModel

MESSAGE_EXACT_MAX = 1 << 62  # never HNSW (see the module docstring)


class SQLiteMessageVectors:
    """The MESSAGE_VECTOR primitives of ``SQLiteStore``."""

    _read: Any
    _write: Any
    _check_model: Any
    def _mv_state(self) -> dict[str, Any]:
        state = self.__dict__.get("_mvstate")
        if state is None:
            state = self.__dict__.setdefault("_mvstate", {"index": None, "seq": 0, "lock": threading.RLock()})
        return state

    # -- writes ----------------------------------------------------------------
    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        rows = [(content_hash(i.content), _blob(i.vector), i.message_id, i.content) for i in items]
        with self._write(f"storing {len(items)} message vectors") as conn:
            self._check_model(conn, model)
            # Only where the content is still what was embedded.
            stored = conn.executemany(
                "INSERT INTO message_vectors (seq, content_hash, vector)"
                " SELECT m.seq, ?, ? FROM messages m WHERE m.id = ? AND m.content = ?"
                " ON CONFLICT (seq) DO UPDATE SET content_hash = excluded.content_hash, vector = excluded.vector",
                rows,
            ).rowcount
            conn.execute(
                "DELETE FROM message_vector_changes WHERE seq <= (SELECT max(seq) FROM message_vector_changes) - ?",
                (CHANGE_LOG_KEEP,),
            )
        return stored

    def clear_vectors(self) -> int:
        with self._write("dropping message vectors") as conn:
            n = conn.execute("SELECT count(*) FROM message_vectors").fetchone()[0]
            conn.execute("DELETE FROM message_vectors")
        state = self._mv_state()
        with state["lock"]:
            state["index"] = None
        return n + super().clear_vectors()  # type: ignore[misc]

    # -- reads -------------------------------------------------------------------
    def get_message_vectors(self, message_ids: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for chunk in _chunks(list(message_ids)):
            rows = self._read(  # type: ignore[attr-defined]
                "reading message vectors",
                "SELECT m.id, v.vector FROM messages m JOIN message_vectors v ON v.seq = m.seq"
                f" WHERE m.id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
            out.update((r[0], _vec(r[1]).copy()) for r in rows)
        return out

    def count_message_vectors(self) -> int:
        state = self._mv_state()
        with state["lock"]:
            if state["index"] is not None:  # loaded: the change log brings it up to date for a lookup or two
                return len(self._message_index(state["index"].dimensions))
        return self._read("counting message vectors", "SELECT count(*) FROM message_vectors")[0][0]

    def messages_without_vectors(self, *, batch_size: int = 256) -> Iterator[list[Message]]:
        last = 0
        while rows := self._read(
            "reading messages to embed",
            f"SELECT {sql.MESSAGE_COLUMNS} FROM messages m WHERE m.seq > ? AND m.content != ''"
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
            (sql.message_match(query, session_id, user_id), cap),
        )
        return rows[0][0]

    def _message_index(self, dimensions: int) -> VectorIndex:
        """The index of every message vector, brought up to date with the change log."""
        state = self._mv_state()
        newest, oldest = self._read(
            "reading message vector changes",
            # Two subqueries: SQLite answers a lone max() or min() from the key, both together by a scan.
            "SELECT (SELECT max(seq) FROM message_vector_changes), (SELECT min(seq) FROM message_vector_changes)",
        )[0]
        newest = newest or 0
        index = state["index"]
        seen = state["seq"]
        if index is not None and index.dimensions == dimensions and newest == seen:
            return index
        if index is None or index.dimensions != dimensions or oldest is None or oldest > seen + 1 or newest < seen:
            rows = self._read("loading message vectors", "SELECT seq, vector FROM message_vectors")
            index = VectorIndex(dimensions, exact_max=MESSAGE_EXACT_MAX)
            if rows:
                keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                index.upsert(keys, np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dimensions))
        else:
            changed = [
                r[0]
                for r in self._read(
                    "reading message vector changes",
                    "SELECT DISTINCT message_seq FROM message_vector_changes WHERE seq > ? AND seq <= ?",
                    (seen, newest),
                )
            ]
            current: dict[int, bytes] = {}
            for part in _chunks(changed):
                current.update(
                    (r[0], r[1])
                    for r in self._read(
                        "reading message vectors",
                        f"SELECT seq, vector FROM message_vectors WHERE seq IN ({','.join('?' * len(part))})",
                        list(part),
                    )
                )
            index.remove([k for k in changed if k not in current])
            if current:
                index.upsert(list(current), np.vstack([_vec(v) for v in current.values()]))
        state["index"], state["seq"] = index, newest
        return index

    def search_message_vectors(
        self, vector: Any, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        state = self._mv_state()
        with state["lock"]:
            index = self._message_index(len(vector))
            allowed = None
            if session_id is not None or user_id is not None:
                where, params = [], []
                for column, value in (("session_id", session_id), ("user_id", user_id)):
                    if value is not None:
                        where.append(f"{column} = ?")
                        params.append(value)
                rows = self._read("scoping messages", f"SELECT seq FROM messages WHERE {' AND '.join(where)}", params)
                allowed = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            keys, scores = index.search(vector, limit, allowed=allowed)
        ranked = [(int(k), float(s)) for k, s in zip(keys, scores)]
        found: dict[int, Message] = {}
        for part in _chunks([k for k, _ in ranked]):
            rows = self._read(
                "reading messages",
                f"SELECT {sql.MESSAGE_COLUMNS} FROM messages m WHERE m.seq IN ({','.join('?' * len(part))})",
                list(part),
            )
            found.update((r[11], _message(r)) for r in rows)
        return [(found[k], s) for k, s in ranked if k in found]
