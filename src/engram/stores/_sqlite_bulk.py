"""Bulk upserts of entries on SQLite: the rows with one ``executemany``, their
full-text rows with one ``INSERT ... SELECT``.

Why not let the schema's trigger index each row: FTS5 flushes its pending
terms to disk at every statement boundary (each row of an ``executemany`` is
a statement), so per-row upkeep writes one tiny index segment per row and
then merges them, ~3x the cost of the whole load. Indexing the batch in one
statement writes it once.

How, without changing the schema: inside a savepoint of the caller's write
transaction the insert trigger is dropped, the rows go in, the new rows
(rowids above the largest before the batch: SQLite hands out max+1) are
indexed in one statement, and the trigger is created again from its own
stored text. Any failure rolls back to the savepoint, which restores the
trigger too; other connections never see the schema without it. Updates of
existing rows keep their per-row trigger (they must delete the old terms).
A key repeated in the batch is applied after the batch, in input order, with
the trigger back in place, so it updates a row the index already holds.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from engram.stores import _sql

# Below this many rows the per-row trigger costs less than the schema change.
MIN_ROWS = 64
_MAX_ROWID = 2**63 - 1
_TRIGGER = "entries_fts_insert"
# The only trigger body this module knows how to stand in for; any other
# (a later migration changed indexing) keeps the per-row path: slower, never wrong.
_TRIGGER_SQL = (
    "CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN "
    "INSERT INTO entries_fts (rowid, ns, key, content) VALUES (new.rowid, new.ns, new.key, new.content); END"
)
_INDEX_NEW_ROWS = (
    "INSERT INTO entries_fts (rowid, ns, key, content) SELECT rowid, ns, key, content FROM entries WHERE rowid > ?"
)
_SPACE = re.compile(r"\s+")

Row = tuple[Any, ...]  # the UPSERT_ENTRY parameters of one entry (metadata at index 4: None = keep)


def upsert_entries(conn: sqlite3.Connection, params: Sequence[Row]) -> list[Row | None]:
    """Upsert ``params`` (inside the caller's write transaction) as ``UPSERT_ENTRY`` one by one would.

    Returns, in input order, the ``(id, created_at, metadata)`` stored for
    each entry given without metadata, and None for the others (stored as given).
    """
    out: list[Row | None] = [None] * len(params)
    stand_in = _stand_in_trigger(conn, len(params))
    if stand_in is None:
        _upsert(conn, params, range(len(params)), out)
        return out
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
    trigger_sql, top = stand_in
    conn.execute("SAVEPOINT engram_bulk_entries")
    try:
        conn.execute(f"DROP TRIGGER {_TRIGGER}")
        _upsert(conn, params, first, out)
        conn.execute(_INDEX_NEW_ROWS, (top,))
        conn.execute(trigger_sql)
        _upsert(conn, params, repeats, out)
    except BaseException:
        conn.execute("ROLLBACK TO engram_bulk_entries")
        conn.execute("RELEASE engram_bulk_entries")
        raise
    conn.execute("RELEASE engram_bulk_entries")
    return out


def _stand_in_trigger(conn: sqlite3.Connection, rows: int) -> tuple[str, int] | None:
    """(the insert trigger's stored text, the largest rowid) when the bulk path may stand in for it."""
    if rows < MIN_ROWS:
        return None
    found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_TRIGGER,)).fetchone()
    if found is None or _SPACE.sub(" ", found[0]).strip() != _TRIGGER_SQL:
        return None
    top = conn.execute("SELECT coalesce(max(rowid), 0) FROM entries").fetchone()[0]
    if top > _MAX_ROWID - rows:  # rowids would no longer all be above ``top``
        return None
    return found[0], top


def _upsert(conn: sqlite3.Connection, params: Sequence[Row], order: Sequence[int], out: list[Row | None]) -> None:
    """Run UPSERT_ENTRY for ``params[i]``, i in ``order``: runs with metadata
    in one executemany, each one without (its stored metadata is read back) alone."""
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
