"""Vector storage of the PostgreSQL backend (mixed into ``PostgresStore``): schema, SQL, primitives.

Vectors live in ``engram_entry_vectors`` (float32 ``bytea`` keyed by the
entry's ``seq``, deleted with the entry by ``ON DELETE CASCADE``, and by a
trigger when an upsert changes the entry's content); the model in
``engram_vector_model``. Every change to ``engram_entry_vectors`` is logged
in ``engram_vector_changes`` by a *deferred* constraint trigger that takes a
transaction-level advisory lock before it draws the next sequence number:
logging happens at commit, one committing writer at a time, so change
numbers become visible in order and a reader that has seen number N has seen
every change up to N. (Taken at commit, after every row lock the transaction
needs, the lock cannot deadlock with row locks.)

Where the database has pgvector, a column ``embedding vector(d)`` beside the
bytes holds the same floats under an HNSW index and searches run in SQL
(:mod:`engram.stores.postgres.pgvector`, :mod:`engram.stores.postgres.pgvector_schema`).
Without it, searches run on the in-process index of
:mod:`engram.stores._vector_log`, kept coherent with other processes by that log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from engram.embeddings.cache import content_hash
from engram.models import Entry
from engram.stores._sql_rows import POSTGRES_ROWS
from engram.stores._vector_log import CHANGE_LOG_KEEP, LoggedVectors, from_blob, model_mismatch, to_blob
from engram.stores.base import MetadataFilter, VectorItem, VectorModel
from engram.stores.postgres.columns import ENTRY_COLUMNS, json_text
from engram.stores.postgres.pgvector import PUT_ENTRY_VECTORS
from engram.stores.postgres.pgvector_bulk import loads_of, put_rows

_entry = POSTGRES_ROWS.entry
_AFTER = POSTGRES_ROWS.entry_width  # the first column a query selects after an entry's
_Item = TypeVar("_Item")

# Key of the advisory lock that orders vector-change numbers ("vect").
VECTOR_LOG_LOCK = 0x76656374


def change_logged(function: str, vectors: str, log: str, columns: tuple[str, ...], lock: int) -> str:
    """``function``, a deferred constraint trigger logging each change of ``vectors`` (its ``columns``) in ``log``.

    The log's numbers are drawn under the advisory lock ``lock`` at commit: see the module docstring.
    """
    names = ", ".join(columns)
    row = {which: ", ".join(f"{which}.{c}" for c in columns) for which in ("OLD", "NEW")}
    return f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({lock}, hashtext(current_schema()));
    IF TG_OP = 'DELETE' THEN
        INSERT INTO {log} ({names}) VALUES ({row["OLD"]});
    ELSE
        INSERT INTO {log} ({names}) VALUES ({row["NEW"]});
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER {vectors}_logged
    AFTER INSERT OR UPDATE OR DELETE ON {vectors}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}();"""


_LOGGED = change_logged(
    "engram_log_vector_change",
    "engram_entry_vectors",
    "engram_vector_changes",
    ("namespace", "entry_seq"),
    VECTOR_LOG_LOCK,
)
VECTOR_SCHEMA = f"""
CREATE TABLE engram_vector_model (
    id         integer PRIMARY KEY CHECK (id = 1),
    name       text NOT NULL,
    dimensions integer NOT NULL
);
CREATE TABLE engram_entry_vectors (
    entry_seq    bigint PRIMARY KEY REFERENCES engram_entries (seq) ON DELETE CASCADE,
    namespace    text COLLATE "C" NOT NULL,
    content_hash bytea NOT NULL,            -- blake2b-128 of the content embedded
    vector       bytea NOT NULL             -- float32, little-endian, unit length
);
CREATE INDEX engram_entry_vectors_by_namespace ON engram_entry_vectors (namespace);
CREATE INDEX engram_entry_vectors_by_hash ON engram_entry_vectors (content_hash);
CREATE TABLE engram_vector_changes (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace text COLLATE "C" NOT NULL,
    entry_seq bigint NOT NULL
);
{_LOGGED}
-- A vector belongs to the content it embeds: an upsert that changes it drops the vector.
CREATE FUNCTION engram_drop_stale_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM engram_entry_vectors WHERE entry_seq = OLD.seq;
    RETURN NULL;
END $$;
CREATE TRIGGER engram_entries_vector_stale AFTER UPDATE OF content ON engram_entries
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content)
    EXECUTE FUNCTION engram_drop_stale_vector();
"""

_LIVE = "(e.expires_at IS NULL OR e.expires_at > %(now)s)"

READ_MODEL = "SELECT name, dimensions FROM engram_vector_model"
LOCK_MODEL = "SELECT name, dimensions FROM engram_vector_model FOR UPDATE"
RECORD_MODEL = (
    "INSERT INTO engram_vector_model (id, name, dimensions) VALUES (1, %s, %s) ON CONFLICT (id) DO NOTHING"
)
PUT_VECTORS = """
INSERT INTO engram_entry_vectors (entry_seq, namespace, content_hash, vector)
SELECT e.seq, e.namespace, v.hash, v.vector
FROM unnest(%(namespaces)s::text[], %(keys)s::text[], %(contents)s::text[], %(escaped)s::boolean[],
            %(contexts)s::text[], %(hashes)s::bytea[], %(vectors)s::bytea[])
     AS v(namespace, key, content, escaped, context, hash, vector)
JOIN engram_entries e ON e.namespace = v.namespace COLLATE "C" AND e.key = v.key COLLATE "C"
    AND e.content = v.content AND e.content_escaped = v.escaped AND e.context::text IS NOT DISTINCT FROM v.context
ON CONFLICT (entry_seq) DO UPDATE SET content_hash = excluded.content_hash, vector = excluded.vector
"""
# The entries first, in (namespace, key) order like put_entries: an upsert that changes content
# (and so deletes the vector) holds its entry row and then wants the vector row, while an INSERT
# here would hold vector rows and then want the entries (its foreign-key check): taken in this
# order first, the two cannot deadlock.
LOCK_ENTRIES = """
SELECT e.seq FROM engram_entries e
JOIN unnest(%(namespaces)s::text[], %(keys)s::text[]) AS i(namespace, key)
    ON e.namespace = i.namespace COLLATE "C" AND e.key = i.key COLLATE "C"
ORDER BY e.namespace, e.key
FOR KEY SHARE OF e
"""
TRIM_LOG = "DELETE FROM engram_vector_changes WHERE seq <= (SELECT max(seq) FROM engram_vector_changes) - %s"
HEAD = "SELECT coalesce(max(seq), 0), min(seq) FROM engram_vector_changes"
CHANGES = "SELECT DISTINCT namespace, entry_seq FROM engram_vector_changes WHERE seq > %s AND seq <= %s"
ALL_VECTORS = "SELECT entry_seq, vector FROM engram_entry_vectors WHERE namespace = %s"
SOME_VECTORS = "SELECT entry_seq, vector FROM engram_entry_vectors WHERE namespace = %s AND entry_seq = ANY(%s)"
NAMESPACES = "SELECT DISTINCT namespace FROM engram_entry_vectors"
COUNT_ALL = "SELECT count(*) FROM engram_entry_vectors"
COUNT_NAMESPACE = "SELECT count(*) FROM engram_entry_vectors WHERE namespace = %s"
ENTRIES_BY_SEQ = f"SELECT {ENTRY_COLUMNS}, e.seq FROM engram_entries e WHERE e.seq = ANY(%(keys)s) AND {_LIVE}"
GET_VECTORS = """
SELECT e.namespace, e.key, v.vector
FROM unnest(%s::text[], %s::text[]) AS i(namespace, key)
JOIN engram_entries e ON e.namespace = i.namespace COLLATE "C" AND e.key = i.key COLLATE "C"
JOIN engram_entry_vectors v ON v.entry_seq = e.seq
"""
BY_HASH = "SELECT content_hash, vector FROM engram_entry_vectors WHERE content_hash = ANY(%s::bytea[])"
CLEAR = ["DELETE FROM engram_entry_vectors", "DELETE FROM engram_vector_model"]


@dataclass(frozen=True)
class VectorWrites:
    """The statements that store one kind of vector (entry, message): see :func:`store_vectors`."""

    table: str  # where the vectors go
    lock: str  # locks the records the vectors belong to, in a fixed order
    put: str  # inserts the vectors as bytes
    pgvector_put: str  # the same, with the pgvector column
    trim: str  # trims the kind's change log


ENTRY_WRITES = VectorWrites("engram_entry_vectors", LOCK_ENTRIES, PUT_VECTORS, PUT_ENTRY_VECTORS, TRIM_LOG)


def last_per_key(items: Sequence[_Item], key: Callable[[_Item], Any]) -> list[_Item]:
    """One item per key, the last given, in key order: a statement may write a row only once."""
    last = {key(item): item for item in items}
    return [last[k] for k in sorted(last)]


def store_vectors(
    store: Any, what: str, model: VectorModel, writes: VectorWrites, chosen: Sequence[Any], params: dict[str, Any]
) -> int:
    """Store the vectors of ``chosen`` (items with ``content`` and ``vector``) whose record still holds that content
    (and, for entries, the context in ``params["contexts"]``).

    ``params`` names the records (``writes.lock``/``put`` read them); the
    model is recorded when none is, else must be it. Returns the rows stored.
    """
    params = {
        **params,
        "contents": [_stored_content(i.content) for i in chosen],
        "escaped": ["\x00" in i.content for i in chosen],
        "hashes": [item_digest(i) for i in chosen],
        "vectors": [to_blob(i.vector) for i in chosen],
    }
    with store._conn(what) as conn, conn.transaction():
        row = store._run(conn, LOCK_MODEL).fetchone()
        if row is None:
            store._run(conn, RECORD_MODEL, (model.name, model.dimensions))
            row = store._run(conn, LOCK_MODEL).fetchone()
        if (row[0], row[1]) != (model.name, model.dimensions):
            raise model_mismatch(store.url, VectorModel(row[0], row[1]), model)
        store._run(conn, writes.lock, params)
        vectors = [i.vector for i in chosen]
        statements = (writes.put, writes.pgvector_put)
        stored = put_rows(store, conn, writes.table, statements, params, vectors, loads_of(store))
        store._run(conn, writes.trim, (CHANGE_LOG_KEEP,))
    return stored


def item_digest(item: Any) -> bytes:
    """The hash kept beside a vector: of the text it embeds (an entry's context, then its content)."""
    return item.digest if isinstance(item, VectorItem) else content_hash(item.content)


def without_vectors_sql(namespace: str | None, after: int, limit: int) -> tuple[str, dict[str, Any]]:
    scope = "" if namespace is None else " AND e.namespace = %(namespace)s"
    sql = (
        f"SELECT {ENTRY_COLUMNS}, e.seq FROM engram_entries e WHERE e.seq > %(after)s{scope}"
        " AND NOT EXISTS (SELECT 1 FROM engram_entry_vectors v WHERE v.entry_seq = e.seq)"
        " ORDER BY e.seq LIMIT %(limit)s"
    )
    return sql, {"after": after, "namespace": namespace, "limit": limit}


class PostgresVectors(LoggedVectors):
    """The VECTOR primitives of ``PostgresStore``; uses its ``_conn``/``_run``/``_fetch``."""

    _conn: Any
    _run: Any
    _fetch: Any
    url: str
    vector_oids: tuple[int, int] | None = None  # set at open when the database has pgvector (_pgvector)

    def vector_model(self) -> VectorModel | None:
        rows = self._fetch("reading the vector model", READ_MODEL)
        return VectorModel(rows[0][0], rows[0][1]) if rows else None

    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        if not items:
            return 0
        chosen = last_per_key(items, lambda i: (i.namespace, i.key))
        params = {
            "namespaces": [i.namespace for i in chosen],
            "keys": [i.key for i in chosen],
            # As the entries table holds it (json text): the vector is only for the context it embeds.
            "contexts": [None if i.context is None else json_text(i.context) for i in chosen],
        }
        return store_vectors(self, f"storing {len(chosen)} vectors", model, ENTRY_WRITES, chosen, params)

    def clear_vectors(self) -> int:
        with self._conn("dropping vectors") as conn, conn.transaction():
            n = self._run(conn, COUNT_ALL).fetchone()[0]
            for statement in CLEAR:
                self._run(conn, statement)
        self._vl_forget()
        return n

    def get_vectors(self, idents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        if not idents:
            return {}
        rows = self._fetch(
            "reading vectors", GET_VECTORS, ([i[0] for i in idents], [i[1] for i in idents])
        )
        return {(r[0], r[1]): from_blob(r[2]).copy() for r in rows}

    def vectors_by_hash(self, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        if not digests:
            return {}
        rows = self._fetch("reading vectors", BY_HASH, (list(set(digests)),))
        return {bytes(r[0]): from_blob(r[1]).copy() for r in rows}

    def entries_without_vectors(self, namespace: str | None, *, batch_size: int = 256) -> Iterator[list[Entry]]:
        after = 0
        while True:
            sql, params = without_vectors_sql(namespace, after, batch_size)
            rows = self._fetch("reading entries to embed", sql, params)
            if not rows:
                return
            yield [_entry(r) for r in rows]
            after = rows[-1][_AFTER]

    # -- the primitives of LoggedVectors ---------------------------------------------
    def _vl_head(self) -> tuple[int, int | None]:
        newest, oldest = self._fetch("reading vector changes", HEAD)[0]
        return newest, oldest

    def _vl_changes(self, after: int, upto: int) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._fetch("reading vector changes", CHANGES, (after, upto))]

    def _vl_vectors(self, namespace: str, keys: Sequence[int] | None) -> list[tuple[int, bytes]]:
        if keys is None:
            rows = self._fetch("loading vectors", ALL_VECTORS, (namespace,))
        else:
            rows = self._fetch("loading vectors", SOME_VECTORS, (namespace, list(keys)))
        return [(r[0], bytes(r[1])) for r in rows]

    def _vl_namespaces(self) -> list[str]:
        return [r[0] for r in self._fetch("listing namespaces", NAMESPACES)]

    def _vl_allowed(self, namespace: str, metadata: MetadataFilter, now: datetime) -> list[int]:
        from engram.stores.postgres.sql import metadata_conditions

        clause, params = metadata_conditions(metadata)
        sql = f"SELECT e.seq FROM engram_entries e WHERE e.namespace = %(namespace)s AND {_LIVE} AND {clause}"
        return [r[0] for r in self._fetch("filtering by metadata", sql, {**params, "namespace": namespace, "now": now})]

    def _vl_entries(self, keys: Sequence[int], now: datetime) -> dict[int, Entry]:
        rows = self._fetch("reading entries", ENTRIES_BY_SEQ, {"keys": list(keys), "now": now})
        return {r[_AFTER]: _entry(r) for r in rows}

    def _vl_count(self, namespace: str | None) -> int:
        if namespace is None:
            return self._fetch("counting vectors", COUNT_ALL)[0][0]
        return self._fetch("counting vectors", COUNT_NAMESPACE, (namespace,))[0][0]


def _stored_content(content: str) -> str:
    """Content as the entries table holds it (JSON text when it has NUL; see ``entry_params``)."""
    import json

    return json.dumps(content) if "\x00" in content else content
