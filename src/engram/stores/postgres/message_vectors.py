"""Message vectors of the PostgreSQL backend (mixed into ``PostgresStore``; capability MESSAGE_VECTOR).

Vectors live in ``engram_message_vectors`` (float32 ``bytea`` keyed by the
message's ``seq``, deleted with the message -- a history deletion, a prune,
a deleted session -- by ``ON DELETE CASCADE``) under the store's one model
(``engram_vector_model``). Every change is logged in
``engram_message_vector_changes`` by a deferred constraint trigger under an
advisory lock, as entry vector changes are (see
:mod:`engram.stores.postgres.vectors`), and searches run in SQL with pgvector
where the database has it (:mod:`engram.stores.postgres.pgvector`), else on the
in-process engine (see :mod:`engram.stores._vector_log`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from engram.models import Message
from engram.stores._sql_rows import POSTGRES_ROWS
from engram.stores._vector_log import LoggedMessageVectors, from_blob
from engram.stores._where import given, where
from engram.stores.base import MessageVectorItem, VectorModel
from engram.stores.postgres import chat_sql as cq
from engram.stores.postgres import vectors as vq
from engram.stores.postgres.pgvector import PUT_MESSAGE_VECTORS as PGVECTOR_PUT

_message = POSTGRES_ROWS.message

# Key of the advisory lock that orders message-vector-change numbers ("mvec").
MESSAGE_VECTOR_LOG_LOCK = 0x6D766563

_LOGGED = vq.change_logged(
    "engram_log_message_vector_change",
    "engram_message_vectors",
    "engram_message_vector_changes",
    ("message_seq",),
    MESSAGE_VECTOR_LOG_LOCK,
)
# Migration 4 of engram.stores.postgres.sql.MIGRATIONS.
MESSAGE_VECTOR_SCHEMA = f"""
CREATE TABLE engram_message_vectors (
    message_seq  bigint PRIMARY KEY REFERENCES engram_messages (seq) ON DELETE CASCADE,
    content_hash bytea NOT NULL,            -- blake2b-128 of the content embedded
    vector       bytea NOT NULL             -- float32, little-endian, unit length
);
CREATE TABLE engram_message_vector_changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_seq bigint NOT NULL
);
{_LOGGED}
"""

# The messages first (in seq order), then the vectors: like LOCK_ENTRIES, so a concurrent
# deletion (message row, then its vector by cascade) cannot deadlock with a put.
LOCK_MESSAGES = "SELECT seq FROM engram_messages WHERE id = ANY(%(ids)s) ORDER BY seq FOR KEY SHARE"
PUT_MESSAGE_VECTORS = """
INSERT INTO engram_message_vectors (message_seq, content_hash, vector)
SELECT m.seq, v.hash, v.vector
FROM unnest(%(ids)s::text[], %(contents)s::text[], %(escaped)s::boolean[], %(hashes)s::bytea[],
            %(vectors)s::bytea[]) AS v(id, content, escaped, hash, vector)
JOIN engram_messages m ON m.id = v.id COLLATE "C" AND m.content = v.content AND m.content_escaped = v.escaped
ON CONFLICT (message_seq) DO UPDATE SET content_hash = excluded.content_hash, vector = excluded.vector
"""
TRIM_LOG = (
    "DELETE FROM engram_message_vector_changes WHERE seq <= (SELECT max(seq) FROM engram_message_vector_changes) - %s"
)
HEAD = "SELECT coalesce(max(seq), 0), min(seq) FROM engram_message_vector_changes"
CHANGES = "SELECT DISTINCT message_seq FROM engram_message_vector_changes WHERE seq > %s AND seq <= %s"
ALL_VECTORS = "SELECT message_seq, vector FROM engram_message_vectors"
SOME_VECTORS = "SELECT message_seq, vector FROM engram_message_vectors WHERE message_seq = ANY(%s)"
COUNT = "SELECT count(*) FROM engram_message_vectors"
GET_VECTORS = (
    "SELECT m.id, v.vector FROM engram_messages m JOIN engram_message_vectors v ON v.message_seq = m.seq"
    " WHERE m.id = ANY(%s::text[])"
)
CLEAR = "DELETE FROM engram_message_vectors"
MESSAGES_BY_SEQ = f"SELECT {cq.MESSAGE_COLUMNS} FROM engram_messages m WHERE m.seq = ANY(%s)"
WITHOUT_VECTORS = (
    f"SELECT {cq.MESSAGE_COLUMNS} FROM engram_messages m WHERE m.seq > %s AND m.content != ''"
    " AND NOT EXISTS (SELECT 1 FROM engram_message_vectors v WHERE v.message_seq = m.seq) ORDER BY m.seq LIMIT %s"
)
MESSAGE_WRITES = vq.VectorWrites("engram_message_vectors", LOCK_MESSAGES, PUT_MESSAGE_VECTORS, PGVECTOR_PUT, TRIM_LOG)


class PostgresMessageVectors(LoggedMessageVectors):
    """The MESSAGE_VECTOR primitives of ``PostgresStore``; uses its ``_conn``/``_run``/``_fetch``."""

    _conn: Any
    _run: Any
    _fetch: Any
    url: str
    vector_oids: tuple[int, int] | None = None  # set at open when the database has pgvector (_pgvector)

    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        chosen = vq.last_per_key(items, lambda i: i.message_id)
        params = {"ids": [i.message_id for i in chosen]}
        return vq.store_vectors(self, f"storing {len(chosen)} message vectors", model, MESSAGE_WRITES, chosen, params)

    def get_message_vectors(self, message_ids: Sequence[str]) -> dict[str, Any]:
        if not message_ids:
            return {}
        rows = self._fetch("reading message vectors", GET_VECTORS, (list(message_ids),))
        return {r[0]: from_blob(r[1]).copy() for r in rows}

    def clear_vectors(self) -> int:
        with self._conn("dropping message vectors") as conn, conn.transaction():
            n = self._run(conn, COUNT).fetchone()[0]
            self._run(conn, CLEAR)
        self._mv_forget()
        return n + super().clear_vectors()  # type: ignore[misc]

    def messages_without_vectors(self, *, batch_size: int = 256) -> Iterator[list[Message]]:
        after = 0
        while rows := self._fetch("reading messages to embed", WITHOUT_VECTORS, (after, batch_size)):
            yield [_message(r) for r in rows]
            after = rows[-1][12]

    # -- the primitives of LoggedMessageVectors ------------------------------------------
    def _mv_head(self) -> tuple[int, int | None]:
        newest, oldest = self._fetch("reading message vector changes", HEAD)[0]
        return newest, oldest

    def _mv_changes(self, after: int, upto: int) -> list[int]:
        return [r[0] for r in self._fetch("reading message vector changes", CHANGES, (after, upto))]

    def _mv_vectors(self, seqs: Sequence[int] | None) -> list[tuple[int, bytes]]:
        if seqs is None:
            rows = self._fetch("loading message vectors", ALL_VECTORS)
        else:
            rows = self._fetch("loading message vectors", SOME_VECTORS, (list(seqs),))
        return [(r[0], bytes(r[1])) for r in rows]

    def _mv_scope(self, session_id: str | None, user_id: str | None) -> list[int]:
        clauses, params = given([("m.session_id = %s", session_id), ("m.user_id = %s", user_id)])
        sql = (
            "SELECT m.seq FROM engram_messages m JOIN engram_message_vectors v ON v.message_seq = m.seq"
            + where(clauses)
        )
        return [r[0] for r in self._fetch("scoping messages", sql, params)]

    def _mv_messages(self, seqs: Sequence[int]) -> dict[int, Message]:
        rows = self._fetch("reading messages", MESSAGES_BY_SEQ, (list(seqs),))
        return {r[12]: _message(r) for r in rows}

    def _mv_count(self) -> int:
        return self._fetch("counting message vectors", COUNT)[0][0]
