"""Bulk upserts of entries on SQLite: a batch is staged in a temporary table,
then applied by two statements (update the keys already there, insert the rest).

Why not ``executemany`` of the one-row upsert: FTS5 flushes its pending terms
to disk at every statement boundary, and each row of an ``executemany`` is a
statement, so the schema's trigger writes one tiny index segment per row and
merges them later (~3x the whole load); and SQLite runs ``ON CONFLICT DO
UPDATE`` row by row ~1.5x slower than a plain insert. Staging costs one plain
insert per row into an unindexed temporary table; the two set statements then
index the whole batch at once, through the very same triggers (so the schema
and what other processes see are unchanged).

A key repeated in the batch is applied after it, one row at a time in input
order, so every key ends up as if the entries had been stored one by one.

The insert of the new rows (with the trigger's indexing, most of a batch's
time) is one statement, which SQLite runs with the GIL released: given
``meanwhile``, it runs on a worker thread while the caller's thread does that
Python work (``store_many`` checks its next part), so the two cores both work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from operator import itemgetter
from typing import Any

from engram.stores.sqlite import sql as _sql

# Below this many rows, staging costs more than it saves.
MIN_ROWS = 32

Row = tuple[Any, ...]  # UPSERT_ENTRY's parameters: id, namespace, key, content, metadata (None = keep), ...

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS engram_batch"
    " (id, namespace, key, content, metadata, created_at, updated_at, expires_at, ns, context)"
)
_STAGE_ROW = "INSERT INTO temp.engram_batch VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# The rules of UPSERT_ENTRY: a live entry keeps id and created_at (an expired
# one is replaced as if new); metadata NULL (not given) keeps a live entry's.
_UPDATE_EXISTING = """
UPDATE entries AS e SET
    id = CASE WHEN e.expires_at <= b.updated_at THEN b.id ELSE e.id END,
    created_at = CASE WHEN e.expires_at <= b.updated_at THEN b.created_at ELSE e.created_at END,
    content = b.content,
    context = b.context,
    metadata = CASE WHEN b.metadata IS NOT NULL OR e.expires_at <= b.updated_at
                    THEN coalesce(b.metadata, '{}') ELSE e.metadata END,
    updated_at = b.updated_at,
    expires_at = b.expires_at
FROM temp.engram_batch AS b
WHERE e.namespace = b.namespace AND e.key = b.key
RETURNING namespace, key, id, created_at, metadata
"""
# Keys just updated conflict and are skipped; a clash on id still fails (Conflict).
_INSERT_NEW = """
INSERT INTO entries (id, namespace, key, content, metadata, created_at, updated_at, expires_at, ns, context)
SELECT id, namespace, key, content, coalesce(metadata, '{}'), created_at, updated_at, expires_at, ns, context
FROM temp.engram_batch WHERE true ORDER BY rowid
ON CONFLICT (namespace, key) DO NOTHING
"""


def upsert_entries(
    conn: sqlite3.Connection, params: Sequence[Row], *, meanwhile: Callable[[], object] | None = None
) -> list[Row | None]:
    """Upsert ``params`` (inside the caller's write transaction) as ``UPSERT_ENTRY`` row by row would,
    calling ``meanwhile`` (Python work of the caller's, not touching ``conn``) while SQLite indexes.

    Returns, in input order, ``(id, created_at, metadata)`` as stored for
    each entry whose stored id or metadata may differ from the one given
    (it updated an existing key, or came without metadata), else None.
    """
    out: list[Row | None] = [None] * len(params)
    first, repeats = _first_and_repeats(params)
    if len(first) < MIN_ROWS:
        _upsert_rows(conn, params, range(len(params)), out)
        if meanwhile is not None:
            meanwhile()
        return out
    conn.execute(_STAGE)
    try:
        conn.executemany(_STAGE_ROW, [params[i] for i in first] if repeats else params)
        updated = {(r[0], r[1]): r[2:] for r in conn.execute(_UPDATE_EXISTING)}
        _insert_new(conn, meanwhile)
    finally:
        try:
            conn.execute("DELETE FROM temp.engram_batch")
        except sqlite3.Error:  # the transaction failed: its rollback empties the stage too
            pass
    if updated or None in map(_metadata, params):
        for i in first:
            p = params[i]
            row = updated.get((p[1], p[2])) if updated else None
            if row is not None:
                out[i] = row
            elif p[4] is None:
                out[i] = (p[0], p[5], "{}")  # new, without metadata
    for i in repeats:  # each after the batch, in input order, reading back what it kept
        out[i] = conn.execute(_sql.UPSERT_ENTRY_RETURNING, params[i]).fetchone()
    return out


def _insert_new(conn: sqlite3.Connection, meanwhile: Callable[[], object] | None) -> None:
    if meanwhile is None:
        conn.execute(_INSERT_NEW)
        return
    # Not before the staging above: its executemany takes the GIL back after every row,
    # and would wait for it behind the Python work at each one.
    with ThreadPoolExecutor(1, "engram-sqlite-insert") as pool:
        inserted = pool.submit(conn.execute, _INSERT_NEW)
        try:
            meanwhile()
        finally:
            wait([inserted])  # the connection is the worker's until the insert is over
        inserted.result()  # its failure, when meanwhile did not fail first


_metadata = itemgetter(4)
_identity = itemgetter(1, 2)  # (namespace, key)


def _first_and_repeats(params: Sequence[Row]) -> tuple[Sequence[int], list[int]]:
    """The indexes of each key's first row, and of the rows that repeat a key
    (none, the usual case, is found at C speed)."""
    if len(set(map(_identity, params))) == len(params):
        return range(len(params)), []
    seen: set[tuple[str, str]] = set()
    first: list[int] = []
    repeats: list[int] = []
    for i, p in enumerate(params):
        k = (p[1], p[2])
        if k in seen:
            repeats.append(i)
        else:
            seen.add(k)
            first.append(i)
    return first, repeats


def _upsert_rows(conn: sqlite3.Connection, params: Sequence[Row], order: Sequence[int], out: list[Row | None]) -> None:
    """UPSERT_ENTRY for ``params[i]``, i in ``order``: runs given with metadata
    in one executemany; each one without alone, reading back what it kept."""
    run: list[Row] = []
    for i in order:
        p = params[i]
        if p[4] is not None:
            run.append(p)
            continue
        if run:
            conn.executemany(_sql.UPSERT_ENTRY, run)
            run = []
        out[i] = conn.execute(_sql.UPSERT_ENTRY_RETURNING, p).fetchone()
    if run:
        conn.executemany(_sql.UPSERT_ENTRY, run)
