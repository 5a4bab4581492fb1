"""Writing vector rows in chunks, and bulk loads into a pgvector table: rows first, the HNSW index after.

Inserting into an HNSW graph row by row costs a graph search per row
(100k LoCoMo vectors through ``store_many``: 24 min on this repository's
2-core machine); pgvector's own advice for a load is to write the rows and
build the index once after. So a write of at least ``BULK_MIN_ROWS`` vectors
that at least doubles its table (an import or a ``store_many`` into a new
or small store) drops the table's HNSW index, writes the rows, and creates
the index again with a ``maintenance_work_mem`` that holds the graph. Since
the load is at least as big as what was there, rebuilding over the old rows
too costs at most twice building over the new ones alone.

The rows of one transaction add up: inside ``store.transaction()`` (an
import writes 10k entries a batch) the index is dropped once the batches so
far reach those sizes, and built once, when the transaction's body ends.

Everything happens in the writer's transaction: ``DROP INDEX`` takes the
table's ``ACCESS EXCLUSIVE`` lock, so other writers and searches of that
table wait until the load commits (writers were already serialized by the
model row lock every vector write takes first), and a load that fails rolls
back to the old index. Nobody ever sees the table without its index.

Every write, bulk or not, goes in chunks of ``CHUNK_ROWS``: one statement's
parameters may not pass PostgreSQL's 1 GB limit on a value (a ``bytea[]`` of
1M 384-dimension vectors is 1.5 GB).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engram.stores.postgres.pgvector import with_embeddings
from engram.stores.postgres.pgvector_schema import prepare_build

BULK_MIN_ROWS = 10_000  # below this the per-row inserts cost less than rebuilding the index
CHUNK_ROWS = 20_000  # rows a statement: ~60 MB of parameters at 384 dimensions

RECORDED_DIMENSIONS = "SELECT dimensions FROM engram_vector_model"


class Loads:
    """What one transaction has written to each vector table, and which indexes it has dropped."""

    def __init__(self) -> None:
        self.written: dict[str, int] = {}
        self.dropped: set[str] = set()

    def finish(self, store: Any, conn: Any) -> None:
        """Build the indexes this transaction dropped (before it commits)."""
        if not self.dropped:
            return
        model = store._run(conn, RECORDED_DIMENSIONS).fetchone()
        for table in self.dropped if model is not None else ():  # no model: the vectors were cleared since
            rows = store._run(conn, f"SELECT count(*) FROM {table}").fetchone()[0]  # a constant name
            build_index(store, conn, table, rows, model[0])
        store.__dict__.pop("_pgv_size_cache", None)  # the namespace sizes that steer searches changed
        self.dropped.clear()


def loads_of(store: Any) -> Loads | None:
    """The loads of the ``store.transaction()`` this thread is in (None outside one)."""
    return getattr(store._held, "loads", None)


@contextmanager
def loading(store: Any, conn: Any) -> Iterator[None]:
    """Around the body of ``store.transaction()``: the indexes its writes dropped are built at its end."""
    if loads_of(store) is not None:  # nested: the outermost builds
        yield
        return
    store._held.loads = Loads()
    try:
        yield
        store._held.loads.finish(store, conn)
    finally:
        store._held.loads = None


def put_rows(
    store: Any,
    conn: Any,
    table: str,
    statements: tuple[str, str],
    params: dict[str, list[Any]],
    vectors: list[Any],
    loads: Loads | None,
) -> int:
    """Write the rows of ``params`` (parallel lists) into ``table`` in chunks; returns rows written.

    ``statements`` are the put statement without and with pgvector (see ``with_embeddings``).
    Inside the caller's transaction, which holds the model row lock. ``loads``: the state of
    an enclosing ``store.transaction()`` (an import: many batches, the index built once at its
    end), None for a write that is its own transaction (its index, if dropped, is built here).
    """
    oids = store.vector_oids
    own = loads is None
    loads = Loads() if loads is None else loads
    rows = len(vectors)
    if oids is not None and table not in loads.dropped:
        # Batches of one transaction add up: an import's 10k-row batches defer the index too.
        written = loads.written.get(table, 0) + rows
        if written >= BULK_MIN_ROWS:
            stored = store._run(conn, f"SELECT count(*) FROM {table}").fetchone()[0] - (written - rows)
            if written >= stored:
                store._run(conn, f"DROP INDEX IF EXISTS {table}_hnsw")
                loads.dropped.add(table)
    loads.written[table] = loads.written.get(table, 0) + rows
    done = 0
    for start in range(0, rows, CHUNK_ROWS):
        chunk = {name: values[start : start + CHUNK_ROWS] for name, values in params.items()}
        put = with_embeddings(conn, oids, *statements, chunk, vectors[start : start + CHUNK_ROWS])
        done += store._run(conn, put, chunk).rowcount
    if own:
        loads.finish(store, conn)
    return done


def build_index(store: Any, conn: Any, table: str, rows: int, dimensions: int) -> None:
    """Create ``table``'s HNSW index over its rows (inside the caller's transaction) and refresh its statistics."""
    m, ef_construction = prepare_build(conn, store._run, rows, dimensions)
    # CREATE INDEX refuses a table with queued trigger events: log the changes now (the log's
    # lock is then held to commit, as at commit) and defer the log's trigger again after.
    store._run(conn, f"SET CONSTRAINTS {table}_logged IMMEDIATE")
    store._run(
        conn,
        # IF NOT EXISTS: a model recorded since (a reindex in the same transaction) has built it
        f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)"
        f" WITH (m = {m}, ef_construction = {ef_construction})",
    )
    store._run(conn, f"SET CONSTRAINTS {table}_logged DEFERRED")
    store._run(conn, f"ANALYZE {table}")  # the planner's row counts, for the searches that follow
