"""pgvector in a PostgreSQL store: finding the extension, installing engram's layer, migrating old stores.

The layer sits on the vector tables of migrations 3 and 4 and leaves them as
they were: the ``bytea`` vector of each row stays the stored truth (export,
copy, ``get_vectors`` and the in-process path read it), and a column
``embedding vector(d)`` beside it holds the same floats for an HNSW cosine
index. Writers of this engram send both; a row written without ``embedding``
(by a process that opened the store before the extension was there, or by an
older engram) gets it from a ``BEFORE`` trigger that decodes the float32
bytes in SQL (~0.7 ms a vector, exact to the bit), so the column never lags
behind, whoever writes.

The column takes its dimensions from the recorded model: a trigger on
``engram_vector_model`` types it ``vector(d)`` and creates the HNSW indexes
when a model is recorded (the tables are empty then), and drops them when
the model is dropped (``clear_vectors``, before a reindex with another
model).

Not a numbered migration: a database without the extension keeps engram's
schema as it is and searches in-process. Whenever a process opens a store
whose database has (or can create) the extension and the layer is missing,
it installs it under the migration lock and fills the column from the stored
vectors, in one transaction, so N processes starting together install it
once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types import TypeInfo

from engram.errors import ConfigError

log = logging.getLogger(__name__)


# HNSW build parameters: as the in-process index (engram.search.vector.index). pgvector's default
# ef_construction 64 builds 2.4x faster, but its graph topped out at recall@10 0.881 at 1M (ef_search
# 1000, its limit); at 100k, 128 gave 0.965 at ef_search 128 where 64 gave 0.941 (bench/pgvector.py).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
# A graph built over this many rows or more (a bulk load: engram.stores.postgres.pgvector_bulk)
# gets twice the degree and twice the construction beam: at 1M, m=16 stayed under recall@10 0.95
# up to ef_search 1000, pgvector's limit (0.945); m=32 with ef_construction 128 needed ef_search
# 900 (0.957), with 256 only 400 (0.967, 6.2 ms against 11.3 ms at 900; docs/backends.md). It
# costs ~2.5x the build time and ~4% more index; smaller graphs reach the target as they are.
HNSW_M_LARGE = 32
HNSW_EF_CONSTRUCTION_LARGE = 256
LARGE_GRAPH_ROWS = 250_000


def hnsw_parameters(rows: int) -> tuple[int, int]:
    """The HNSW degree (m) and construction beam for an index built over ``rows`` vectors."""
    if rows >= LARGE_GRAPH_ROWS:
        return HNSW_M_LARGE, HNSW_EF_CONSTRUCTION_LARGE
    return HNSW_M, HNSW_EF_CONSTRUCTION


# maintenance_work_mem for a build: the graph's estimated size (pgvector builds far slower
# once it no longer fits), never below the server's own setting, at most this much.
BUILD_MEMORY_MAX_MB = 4096
BUILD_WORKERS = 4  # parallel build workers asked for (the server caps them by max_parallel_workers)
CURRENT_MEMORY_MB = "SELECT pg_size_bytes(current_setting('maintenance_work_mem')) / 1048576"


def graph_memory_mb(rows: int, dimensions: int) -> int:
    """What pgvector's in-memory graph of ``rows`` vectors takes while it is built, in MB, with a margin:
    the vector, 2*M level-0 neighbours (plus upper levels) at ~16 bytes each, ~200 bytes of element."""
    per_row = dimensions * 4 + 8 + 3 * hnsw_parameters(rows)[0] * 16 + 200
    return int(rows * per_row * 1.2 / 2**20) + 64


def prepare_build(conn: psycopg.Connection, run: Callable[..., Any], rows: int, dimensions: int) -> tuple[int, int]:
    """Size this transaction's index build for a graph of ``rows`` vectors (its memory and
    parallel workers); returns the graph's ``(m, ef_construction)`` (``hnsw_parameters``)."""
    current = run(conn, CURRENT_MEMORY_MB).fetchone()[0]
    memory = min(max(graph_memory_mb(rows, dimensions), current), max(BUILD_MEMORY_MAX_MB, current))
    run(conn, f"SET LOCAL maintenance_work_mem = '{int(memory)}MB'")
    run(conn, f"SET LOCAL max_parallel_maintenance_workers = {BUILD_WORKERS}")
    return hnsw_parameters(rows)


BACKFILL_BATCH = 2000

# Decodes little-endian float32 bytes into a vector: sign, exponent and mantissa by
# integer arithmetic, the value computed in float8 (exact for every float32,
# subnormals included) and cast to real without rounding.
DECODE_FUNCTION = """
CREATE OR REPLACE FUNCTION engram_vector_of(b bytea) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT array_agg(
    CASE WHEN ex = 0 THEN mant * 2.0::float8 ^ -149 ELSE (8388608 + mant) * 2.0::float8 ^ (ex - 150) END
    * CASE WHEN sgn = 1 THEN -1 ELSE 1 END
    ORDER BY i)::real[]::vector
FROM (SELECT i,
             get_byte(b, 4 * i + 3) >> 7 AS sgn,
             ((get_byte(b, 4 * i + 3) & 127) << 1) | (get_byte(b, 4 * i + 2) >> 7) AS ex,
             ((get_byte(b, 4 * i + 2) & 127) << 16) | (get_byte(b, 4 * i + 1) << 8) | get_byte(b, 4 * i) AS mant
      FROM generate_series(0, length(b) / 4 - 1) AS i) AS parts
$$;
"""

# Fills embedding when a writer did not send it, or changed the bytes without it.
FILL_FUNCTION = """
CREATE OR REPLACE FUNCTION engram_fill_embedding() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.embedding IS NULL OR (TG_OP = 'UPDATE' AND NEW.vector IS DISTINCT FROM OLD.vector
                                 AND NEW.embedding IS NOT DISTINCT FROM OLD.embedding) THEN
        NEW.embedding := engram_vector_of(NEW.vector);
    END IF;
    RETURN NEW;
END $$;
"""

# Types the columns and builds the indexes when a model is recorded; undoes both when it is dropped.
TYPE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION engram_type_embeddings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- ALTER TABLE refuses a table with queued trigger events (the deferred change log of a
    -- DELETE earlier in this transaction): fire them now, and defer the rest again after.
    SET CONSTRAINTS ALL IMMEDIATE;
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('ALTER TABLE engram_entry_vectors ALTER COLUMN embedding TYPE vector(%s)', NEW.dimensions);
        EXECUTE format('ALTER TABLE engram_message_vectors ALTER COLUMN embedding TYPE vector(%s)', NEW.dimensions);
        CREATE INDEX IF NOT EXISTS engram_entry_vectors_hnsw ON engram_entry_vectors
            USING hnsw (embedding vector_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION});
        CREATE INDEX IF NOT EXISTS engram_message_vectors_hnsw ON engram_message_vectors
            USING hnsw (embedding vector_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION});
    ELSE
        DROP INDEX IF EXISTS engram_entry_vectors_hnsw;
        DROP INDEX IF EXISTS engram_message_vectors_hnsw;
        ALTER TABLE engram_entry_vectors ALTER COLUMN embedding TYPE vector;
        ALTER TABLE engram_message_vectors ALTER COLUMN embedding TYPE vector;
    END IF;
    SET CONSTRAINTS ALL DEFERRED;
    RETURN NULL;
END $$;
"""

LAYER = [
    DECODE_FUNCTION,
    FILL_FUNCTION,
    TYPE_FUNCTION,
    "ALTER TABLE engram_entry_vectors ADD COLUMN embedding vector",
    "ALTER TABLE engram_message_vectors ADD COLUMN embedding vector",
    # Left behind when the extension was dropped with its columns (see REMOVE_LAYER).
    "DROP TRIGGER IF EXISTS engram_entry_embedding ON engram_entry_vectors",
    "DROP TRIGGER IF EXISTS engram_message_embedding ON engram_message_vectors",
    "DROP TRIGGER IF EXISTS engram_vector_model_typed ON engram_vector_model",
    (
        "CREATE TRIGGER engram_entry_embedding BEFORE INSERT OR UPDATE ON engram_entry_vectors"
        " FOR EACH ROW EXECUTE FUNCTION engram_fill_embedding()"
    ),
    (
        "CREATE TRIGGER engram_message_embedding BEFORE INSERT OR UPDATE ON engram_message_vectors"
        " FOR EACH ROW EXECUTE FUNCTION engram_fill_embedding()"
    ),
    (
        "CREATE TRIGGER engram_vector_model_typed AFTER INSERT OR DELETE ON engram_vector_model"
        " FOR EACH ROW EXECUTE FUNCTION engram_type_embeddings()"
    ),
]

# `DROP EXTENSION vector CASCADE` drops the columns and the decoder, not the triggers (they do
# not depend on the type) which would then break every vector write: a store that finds the
# extension gone removes what is left, and searches in-process.
REMOVE_LAYER = [
    "DROP TRIGGER IF EXISTS engram_entry_embedding ON engram_entry_vectors",
    "DROP TRIGGER IF EXISTS engram_message_embedding ON engram_message_vectors",
    "DROP TRIGGER IF EXISTS engram_vector_model_typed ON engram_vector_model",
    "DROP FUNCTION IF EXISTS engram_fill_embedding()",
    "DROP FUNCTION IF EXISTS engram_type_embeddings()",
]
LAYER_LEFT = "SELECT to_regprocedure('engram_fill_embedding()') IS NOT NULL"

EXTENSION_SCHEMA = "SELECT n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname = 'vector'"
EXTENSION_AVAILABLE = (
    "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')"
)
CREATE_EXTENSION = "CREATE EXTENSION IF NOT EXISTS vector SCHEMA public"
VECTOR_TYPE = (
    "SELECT t.oid, t.typarray FROM pg_type t WHERE t.oid = to_regtype('vector')"
)
LAYER_INSTALLED = (
    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'engram_entry_vectors'::regclass"
    " AND attname = 'embedding' AND NOT attisdropped)"
)
READ_MODEL = "SELECT dimensions FROM engram_vector_model"
BACKFILL_READ = {
    "entries": "SELECT entry_seq, vector FROM engram_entry_vectors WHERE entry_seq > %s ORDER BY entry_seq LIMIT %s",
    "messages": "SELECT message_seq, vector FROM engram_message_vectors WHERE message_seq > %s ORDER BY message_seq LIMIT %s",
}
BACKFILL_WRITE = {
    "entries": "UPDATE engram_entry_vectors v SET embedding = x.embedding"
    " FROM unnest(%(seqs)s::bigint[], %(embeddings)b::vector[]) AS x(seq, embedding) WHERE v.entry_seq = x.seq",
    "messages": "UPDATE engram_message_vectors v SET embedding = x.embedding"
    " FROM unnest(%(seqs)s::bigint[], %(embeddings)b::vector[]) AS x(seq, embedding) WHERE v.message_seq = x.seq",
}


class Embedding:
    """A float32 vector sent as a pgvector ``vector`` in binary (no text formatting: ~75 us a vector)."""

    __slots__ = ("vector",)

    def __init__(self, vector: Any):
        self.vector = vector


class EmbeddingDumper(Dumper):
    """pgvector's binary input: dimensions (int16), 0 (int16), then big-endian float32s."""

    format = Format.BINARY

    def dump(self, obj: Embedding) -> bytes:
        values = np.asarray(obj.vector, dtype=">f4")
        return len(values).to_bytes(2, "big") + b"\x00\x00" + values.tobytes()


def register(conn: psycopg.Connection, oids: tuple[int, int]) -> None:
    """Teach ``conn`` to send :class:`Embedding` values (and lists of them) as ``vector`` (no round trip)."""
    if getattr(conn, "engram_vector_oids", None) == oids:
        return
    TypeInfo("vector", oids[0], oids[1]).register(conn)
    dumper = type("VectorDumper", (EmbeddingDumper,), {"oid": oids[0]})
    conn.adapters.register_dumper(Embedding, dumper)
    setattr(conn, "engram_vector_oids", oids)  # noqa: B010 (a mark on the connection object)


def extension_ready(
    conn: psycopg.Connection,
    run: Callable[..., Any],
    schema: str | None,
    *,
    create: bool,
) -> bool:
    """Whether the ``vector`` type is usable from engram's search path (with ``create``: creating
    the extension when it is installed on the server and engram is allowed to)."""
    found = run(conn, EXTENSION_SCHEMA).fetchone()
    if found is None:
        if not create or not run(conn, EXTENSION_AVAILABLE).fetchone()[0]:
            return False
        try:
            with conn.transaction():
                run(conn, CREATE_EXTENSION)
        except psycopg.errors.UniqueViolation:
            pass  # another process created it at the same moment
        except psycopg.Error as exc:
            log.info(
                "pgvector is installed on the server but engram cannot create the extension (%s): "
                "vectors are searched in-process; `CREATE EXTENSION vector` as a superuser enables it",
                exc,
            )
            return False
        found = run(conn, EXTENSION_SCHEMA).fetchone()
        if found is None:
            return False
    if found[0] not in ("public", schema):
        log.warning(
            "the vector extension lives in schema %s, outside engram's search path: vectors are "
            "searched in-process",
            found[0],
        )
        return False
    return True


def install(
    conn: psycopg.Connection, run: Callable[..., Any], oids: tuple[int, int]
) -> None:
    """Install the layer when missing (caller holds the migration lock, inside a transaction)."""
    if run(conn, LAYER_INSTALLED).fetchone()[0]:
        return
    for statement in LAYER:
        run(conn, statement)
    row = run(conn, READ_MODEL).fetchone()
    if row is None:
        return  # no vectors yet: the model trigger types the columns when the first one comes
    dimensions = row[0]
    log.info(
        "moving the stored vectors into pgvector (%d dimensions); this runs once",
        dimensions,
    )
    for table in ("entry", "message"):
        run(
            conn,
            f"ALTER TABLE engram_{table}_vectors ALTER COLUMN embedding TYPE vector({dimensions})",
        )
    register(conn, oids)
    for kind, table in (("entries", "entry"), ("messages", "message")):
        # Filling the column changes no vector: nothing for the change log (of 1M rows) to tell.
        run(
            conn,
            f"ALTER TABLE engram_{table}_vectors DISABLE TRIGGER engram_{table}_vectors_logged",
        )
        for seqs, blobs in _batches(conn, run, kind):
            vectors = [Embedding(np.frombuffer(b, dtype="<f4")) for b in blobs]
            run(conn, BACKFILL_WRITE[kind], {"seqs": seqs, "embeddings": vectors})
        run(
            conn,
            f"ALTER TABLE engram_{table}_vectors ENABLE TRIGGER engram_{table}_vectors_logged",
        )
    # Built once over the filled column (faster than inserting into an empty graph), as a bulk
    # build over as many rows is: its graph, its memory, its workers.
    for table in ("entry", "message"):
        rows = run(conn, f"SELECT count(*) FROM engram_{table}_vectors").fetchone()[0]
        m, ef_construction = prepare_build(conn, run, rows, dimensions)
        run(
            conn,
            f"CREATE INDEX engram_{table}_vectors_hnsw ON engram_{table}_vectors USING hnsw"
            f" (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction})",
        )


def _batches(
    conn: psycopg.Connection, run: Callable[..., Any], kind: str
) -> Iterator[tuple[list[int], list[bytes]]]:
    after = 0
    while rows := run(conn, BACKFILL_READ[kind], (after, BACKFILL_BATCH)).fetchall():
        yield [r[0] for r in rows], [bytes(r[1]) for r in rows]
        after = rows[-1][0]


def open_layer(
    conn: psycopg.Connection,
    run: Callable[..., Any],
    schema: str | None,
    lock: Callable[[], None],
    *,
    use: bool = True,
) -> tuple[int, int] | None:
    """At open: the ``vector`` type's (oid, array oid) when vectors are searched with pgvector, else None.

    ``lock()`` takes the migration lock inside the current transaction. Without ``use``
    (``pgvector=off``) nothing is created or installed, but what a dropped extension left
    behind is still removed, since it would break every write.
    """
    if not extension_ready(conn, run, schema, create=use):
        if run(conn, LAYER_LEFT).fetchone()[0]:
            with conn.transaction():
                lock()
                for statement in REMOVE_LAYER:
                    run(conn, statement)
        return None
    if not use:
        return None
    row = run(conn, VECTOR_TYPE).fetchone()
    if row is None:
        return None
    oids = (row[0], row[1])
    if not run(conn, LAYER_INSTALLED).fetchone()[0]:
        with conn.transaction():
            lock()
            install(conn, run, oids)
    return oids


def pgvector_option(url: str) -> tuple[str, bool]:
    """``url`` without engram's ``pgvector`` option, and whether pgvector may be used (``pgvector=off``: not).

    Raises:
        ConfigError: a value other than ``auto`` or ``off``.
    """
    parts = urlsplit(url)
    if "pgvector" not in dict(parse_qsl(parts.query, keep_blank_values=True)):
        return url, True
    kept, use = [], True
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "pgvector":
            kept.append((name, value))
        elif value in ("auto", "off"):
            use = value == "auto"
        else:
            raise ConfigError(
                f"pgvector={value!r} in the PostgreSQL URL must be 'auto' (the default) or 'off'"
            )
    return urlunsplit(parts._replace(query=urlencode(kept))), use
