"""Vector and message-vector search in SQL with pgvector (mixed into ``PostgresStore``).

When the store opened with pgvector (see :mod:`engram.stores.postgres.pgvector_schema`),
searches run in the database and no process holds a graph:

* a namespace with up to ``PGVECTOR_EXACT_MAX`` vectors (or the
  ``vector_exact_max`` setting), and any search with a metadata filter, is an
  exact scan of just the rows the filter admits (namespace, live, metadata
  inside one query), ordered by cosine similarity;
* a bigger one walks the HNSW index with the namespace condition in the same
  query. pgvector 0.6 filters the ``hnsw.ef_search`` candidates the graph
  yields, so the beam is widened by the namespace's share of the table (the
  engine's own beam for that size, divided by the share); where that would
  pass pgvector's limit of 1000, or the walk yields fewer rows than asked,
  the namespace is scanned exactly instead.

Message searches scoped to a session or a user scan the scope exactly (as
the in-process engine does); unscoped ones walk the message index.

Without pgvector every method here hands over to the in-process engine of
:mod:`engram.stores._vector_log`.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import numpy as np

from engram.models import Entry, Message
from engram.search.vector.index import DEFAULT_EXACT_MAX, HNSW_EXPANSION_SEARCH, search_expansion
from engram.stores.base import MetadataFilter
from engram.stores.postgres import chat_sql as cq
from engram.stores.contracts.vectors import IN_PROCESS, PGVECTOR
from engram.stores.postgres.columns import ENTRY_COLUMNS
from engram.stores.postgres.pgvector_schema import HNSW_M_LARGE, Embedding, register

EF_SEARCH_MAX = 1000  # pgvector's limit on hnsw.ef_search
PGVECTOR_BEAM_FACTOR = (
    2  # pgvector's beam over the in-process engine's, for the same recall (see beam)
)
# The same for a graph of twice the degree and construction beam (built over LARGE_GRAPH_ROWS or
# more): at 1M it gave recall@10 0.948 at ef_search 300 and 0.967 at 400 (docs/backends.md), so
# 0.5 x 800 = 400; never under the in-process engine's smallest beam.
WIDE_GRAPH_BEAM_FACTOR = 0.5
DOMINANT_SHARE = 0.5  # a namespace at least this share of the table walks the graph even at the limit
# An exact scan in SQL costs ~2 us a vector (bench/pgvector.py: 25 ms for 12k, where the graph
# walk found the same top 10 in 2.5 ms), so namespaces past a few thousand vectors walk the index;
# the in-process engine's threshold (numpy's scan, ~0.1 us a vector) is 10x this.
PGVECTOR_EXACT_MAX = 2_000
SIZE_TTL_S = 30.0  # namespace sizes only steer the plan: a count a few seconds old is good enough

_LIVE = "(e.expires_at IS NULL OR e.expires_at > %(now)s)"
TABLE_ROWS = (
    "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass"
)
# The entry table's rows and its HNSW index's degree (m), in one round trip
ENTRY_TABLE_SHAPE = (
    "SELECT greatest(c.reltuples, 0)::bigint, (SELECT substring(array_to_string(i.reloptions, ',')"
    " FROM 'm=([0-9]+)')::int FROM pg_class i WHERE i.oid = to_regclass('engram_entry_vectors_hnsw'))"
    " FROM pg_class c WHERE c.oid = 'engram_entry_vectors'::regclass"
)
NAMESPACE_ROWS = "SELECT count(*) FROM engram_entry_vectors WHERE namespace = %s"
ALL_ROWS = "SELECT count(*) FROM engram_entry_vectors"
MESSAGE_ROWS = "SELECT count(*) FROM engram_message_vectors"
SET_EF = "SELECT set_config('hnsw.ef_search', %s, false)"


def entries_exact_sql(namespace: str | None, metadata_clause: str | None) -> str:
    """The ``want`` entries nearest ``q`` among those the filters admit, by a scan (never the index)."""
    where = [_LIVE]
    if namespace is not None:
        where.append("v.namespace = %(namespace)s")
    if metadata_clause:
        where.append(metadata_clause)
    # ORDER BY the similarity (not the distance operator): the planner cannot take the HNSW index.
    return (
        f"SELECT {ENTRY_COLUMNS}, 1 - (v.embedding <=> %(q)s) AS score"
        " FROM engram_entry_vectors v JOIN engram_entries e ON e.seq = v.entry_seq"
        f" WHERE {' AND '.join(where)} ORDER BY score DESC, e.seq LIMIT %(want)s"
    )


def entries_ann_sql(namespace: str | None) -> str:
    """The ``want`` entries nearest ``q`` by the HNSW index, the namespace condition inside the walk."""
    scope = "" if namespace is None else " WHERE v.namespace = %(namespace)s"
    # LATERAL: each of the few rows the walk yields is looked up by primary key (a plain join
    # may be planned as a hash join over the whole entries table when statistics are missing).
    return (
        f"SELECT {ENTRY_COLUMNS}, 1 - n.distance AS score FROM ("
        f" SELECT v.entry_seq, v.embedding <=> %(q)s AS distance FROM engram_entry_vectors v{scope}"
        " ORDER BY v.embedding <=> %(q)s LIMIT %(want)s) AS n"
        f" CROSS JOIN LATERAL (SELECT * FROM engram_entries e WHERE e.seq = n.entry_seq AND {_LIVE}) AS e"
        " ORDER BY n.distance, e.seq"
    )


def messages_exact_sql(
    session_id: str | None, user_id: str | None
) -> tuple[str, dict[str, Any]]:
    where, params = ["TRUE"], {}
    for column, value in (
        ("session_id", session_id),
        ("user_id", user_id),
    ):  # constants, never input
        if value is not None:
            where.append(f"m.{column} = %({column})s")
            params[column] = value
    sql = (
        f"SELECT {cq.MESSAGE_COLUMNS}, 1 - (v.embedding <=> %(q)s) AS score"
        " FROM engram_message_vectors v JOIN engram_messages m ON m.seq = v.message_seq"
        f" WHERE {' AND '.join(where)} ORDER BY score DESC, m.seq LIMIT %(want)s"
    )
    return sql, params


MESSAGES_ANN = (
    f"SELECT {cq.MESSAGE_COLUMNS}, 1 - n.distance AS score FROM ("
    " SELECT v.message_seq, v.embedding <=> %(q)s AS distance FROM engram_message_vectors v"
    " ORDER BY v.embedding <=> %(q)s LIMIT %(want)s) AS n"
    " CROSS JOIN LATERAL (SELECT * FROM engram_messages m WHERE m.seq = n.message_seq) AS m"
    " ORDER BY n.distance, m.seq"
)


def beam(rows: int, table_rows: int, want: int, m: int | None = None) -> int | None:
    """``hnsw.ef_search`` for a namespace of ``rows`` in a table of ``table_rows``; None: scan it exactly.

    Twice the in-process engine's beam for a graph of ``rows``: pgvector's graph
    needs more for the same recall (bench/pgvector.py, 100k LoCoMo vectors,
    ef_construction 128: ef 128 gave recall@10 0.965 where hnswlib gave 0.972;
    ef 200 0.981, ef 400 0.993). Widened by the namespace's share of the table, since
    pgvector drops other namespaces' candidates after the walk. Past pgvector's
    limit of 1000 a namespace that is most of the table walks at 1000 (an exact
    scan of it would be far slower), a smaller one is scanned exactly. A graph of degree ``m``
    at least HNSW_M_LARGE (built with twice the construction beam) needs less
    (``WIDE_GRAPH_BEAM_FACTOR``, never under the engine's smallest beam).
    """
    share = rows / max(rows, table_rows, 1)
    if m is not None and m >= HNSW_M_LARGE:
        walk = max(WIDE_GRAPH_BEAM_FACTOR * search_expansion(rows), HNSW_EXPANSION_SEARCH)
    else:
        walk = PGVECTOR_BEAM_FACTOR * search_expansion(rows)
    ef = math.ceil(max(walk, want) / max(share, 1e-9))
    if ef <= EF_SEARCH_MAX:
        return ef
    return EF_SEARCH_MAX if share >= DOMINANT_SHARE else None


class PgVectorSearch:
    """``search_vector`` / ``search_message_vectors`` in SQL when the store has pgvector."""

    _conn: Any
    _run: Any
    _fetch: Any
    vector_exact_max: int = DEFAULT_EXACT_MAX
    # The vector type's oids, set at open when pgvector is used.
    vector_oids: tuple[int, int] | None = None

    def vector_search_path(self) -> str:
        return PGVECTOR if self.vector_oids is not None else IN_PROCESS

    # -- entries -----------------------------------------------------------------------
    def search_vector(
        self,
        vector: Any,
        *,
        namespace: str | None,
        metadata: MetadataFilter,
        limit: int,
        now: datetime,
    ) -> list[tuple[Entry, float]]:
        if self.vector_oids is None:
            return super().search_vector(  # type: ignore[misc]
                vector, namespace=namespace, metadata=metadata, limit=limit, now=now
            )
        from engram.stores.postgres.sql import metadata_conditions
        from engram.stores.postgres.store import _AFTER, _entry

        # a few spare for entries that expired since, as the in-process engine does
        want = limit + 8
        params: dict[str, Any] = {
            "q": Embedding(vector),
            "namespace": namespace,
            "now": now,
            "want": want,
        }
        ef = None
        if not metadata:
            rows, table_rows, m = self._pgv_sizes(namespace)
            ef = None if rows <= self._pgv_exact_max() else beam(rows, table_rows, want, m)
        with self._conn("searching by vector") as conn:
            register(conn, self.vector_oids)
            found: list[Any] = []
            if ef is not None:
                _set_ef(self, conn, ef)
                found = self._run(conn, entries_ann_sql(namespace), params).fetchall()
            # A small namespace, a filter, or a walk that came back short: scan exactly.
            if len(found) < want:
                clause, extra = metadata_conditions(metadata) if metadata else ("", {})
                found = self._run(
                    conn, entries_exact_sql(namespace, clause), {**params, **extra}
                ).fetchall()
        return [(_entry(r), float(r[_AFTER])) for r in found][:limit]

    def _pgv_exact_max(self) -> int:
        """The ``vector_exact_max`` setting where one was given (set on this store), else pgvector's own."""
        return self.__dict__.get("vector_exact_max", PGVECTOR_EXACT_MAX)

    def _pgv_sizes(self, namespace: str | None) -> tuple[int, int, int | None]:
        """Vectors in ``namespace`` (None: all), in the table, and the index's degree (None: no
        index), cached for SIZE_TTL_S."""
        cache: dict[str | None, tuple[float, int, int, int | None]] = self.__dict__.setdefault(
            "_pgv_size_cache", {}
        )
        hit = cache.get(namespace)
        if hit is not None and time.monotonic() - hit[0] < SIZE_TTL_S:
            return hit[1], hit[2], hit[3]
        with self._conn("counting vectors") as conn:
            if namespace is None:
                rows = self._run(conn, ALL_ROWS).fetchone()[0]
            else:
                rows = self._run(conn, NAMESPACE_ROWS, (namespace,)).fetchone()[0]
            table_rows, m = self._run(conn, ENTRY_TABLE_SHAPE).fetchone()
        cache[namespace] = (time.monotonic(), rows, max(rows, table_rows), m)
        return rows, max(rows, table_rows), m

    # -- messages ------------------------------------------------------------------------
    def search_message_vectors(
        self, vector: Any, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        if self.vector_oids is None:
            return super().search_message_vectors(  # type: ignore[misc]
                vector, session_id=session_id, user_id=user_id, limit=limit
            )
        from engram.stores.postgres.chat import _message

        want = limit + 8
        params: dict[str, Any] = {"q": Embedding(np.asarray(vector)), "want": want}
        scoped = session_id is not None or user_id is not None
        with self._conn("searching messages by vector") as conn:
            register(conn, self.vector_oids)
            found: list[Any] = []
            if not scoped:
                total = self._run(
                    conn, TABLE_ROWS, ("engram_message_vectors",)
                ).fetchone()[0]
                if total > self._pgv_exact_max():
                    _set_ef(self, conn, beam(total, total, want) or EF_SEARCH_MAX)
                    found = self._run(conn, MESSAGES_ANN, params).fetchall()
            if len(found) < want:
                sql, extra = messages_exact_sql(session_id, user_id)
                found = self._run(conn, sql, {**params, **extra}).fetchall()
        return [(_message(r), float(r[13])) for r in found][:limit]


def _set_ef(store: Any, conn: Any, ef: int) -> None:
    """Set ``hnsw.ef_search`` on this pooled connection (a round trip only when it changes)."""
    if getattr(conn, "engram_ef_search", None) != ef:
        store._run(conn, SET_EF, (str(ef),))
        setattr(conn, "engram_ef_search", ef)  # noqa: B010 (a mark on the connection object)


# -- writes: the embedding sent beside the bytes (the trigger would decode them at ~0.7 ms a vector) --

PUT_ENTRY_VECTORS = """
INSERT INTO engram_entry_vectors (entry_seq, namespace, content_hash, vector, embedding)
SELECT e.seq, e.namespace, v.hash, v.vector, v.embedding
FROM unnest(%(namespaces)s::text[], %(keys)s::text[], %(contents)s::text[], %(escaped)s::boolean[],
            %(contexts)s::text[], %(hashes)s::bytea[], %(vectors)s::bytea[], %(embeddings)b::vector[])
     AS v(namespace, key, content, escaped, context, hash, vector, embedding)
JOIN engram_entries e ON e.namespace = v.namespace COLLATE "C" AND e.key = v.key COLLATE "C"
    AND e.content = v.content AND e.content_escaped = v.escaped AND e.context::text IS NOT DISTINCT FROM v.context
ON CONFLICT (entry_seq) DO UPDATE
    SET content_hash = excluded.content_hash, vector = excluded.vector, embedding = excluded.embedding
"""
PUT_MESSAGE_VECTORS = """
INSERT INTO engram_message_vectors (message_seq, content_hash, vector, embedding)
SELECT m.seq, v.hash, v.vector, v.embedding
FROM unnest(%(ids)s::text[], %(contents)s::text[], %(escaped)s::boolean[], %(hashes)s::bytea[],
            %(vectors)s::bytea[], %(embeddings)b::vector[]) AS v(id, content, escaped, hash, vector, embedding)
JOIN engram_messages m ON m.id = v.id COLLATE "C" AND m.content = v.content AND m.content_escaped = v.escaped
ON CONFLICT (message_seq) DO UPDATE
    SET content_hash = excluded.content_hash, vector = excluded.vector, embedding = excluded.embedding
"""


def with_embeddings(
    conn: Any,
    oids: tuple[int, int] | None,
    statement: str,
    pgvector_statement: str,
    params: dict[str, Any],
    vectors: list[Any],
) -> str:
    """The put statement to run on ``conn``: with pgvector, ``pgvector_statement`` and the
    embeddings added to ``params``; without, ``statement`` as it is."""
    if oids is None:
        return statement
    register(conn, oids)
    params["embeddings"] = [Embedding(v) for v in vectors]
    return pgvector_statement
