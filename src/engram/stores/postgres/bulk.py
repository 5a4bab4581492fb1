"""Bulk upserts of entries on PostgreSQL: a batch goes in with ``COPY`` to a
temporary table, then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``.

One statement per entry (even pipelined) pays planning, a round of the
protocol and an index descent per row; ``COPY`` streams the rows, and the
single upsert runs them as one plan. Rows are upserted in (namespace, key)
order, the order every process locks them in, so concurrent batches with
overlapping keys never deadlock. One ``INSERT ... ON CONFLICT`` may not touch
a row twice: a key repeated in the batch is applied after it, one row at a
time in input order, so every key ends up as if stored one by one.

A large batch goes in parts (``PART_ROWS``), in that same order: while the
server upserts one part, a worker thread builds the next part's rows (the
tsvector text, computed in Python by ``search/tsquery.py``, is most of the
client's work), so the client and the server each keep a core busy instead of
taking turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import psycopg

from engram.models import Entry
from engram.stores.postgres import sql as q
from engram.stores.postgres.columns import ENTRY_VALUES, entry_params, entry_values

# Below this many rows, the temporary table costs more than it saves.
MIN_ROWS = 32

# ON COMMIT DELETE ROWS: nothing outlives a transaction; TRUNCATE below also
# empties it between the batches of one (an import is one transaction).
# The rows come in binary COPY, which the client writes ~3x faster than text
# (and the server reads without parsing timestamps); the tsvector arrives as
# its text, parsed by the upsert (psycopg has no binary form of it), and so does
# the JSON of metadata and context (psycopg would encode a str as a JSON string).
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS engram_entry_batch (
    id text COLLATE "C", namespace text COLLATE "C", key text COLLATE "C", content text, escaped boolean,
    metadata text, created_at timestamptz, updated_at timestamptz, expires_at timestamptz, tsv text,
    context text
) ON COMMIT DELETE ROWS
"""
_COPY = f"COPY pg_temp.engram_entry_batch ({', '.join(ENTRY_VALUES)}) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ("text", "text", "text", "text", "bool", "text", "timestamptz", "timestamptz", "timestamptz", "text", "text")
# The rules of UPSERT_ENTRY, for a batch whose entries all came with metadata
# (%(keep)s false: it replaces the stored one) or all without (true: a live
# entry keeps its own). Only the rows that were updated are returned (xmax is
# set on the row an ON CONFLICT update wrote).
_UPSERT_STAGED = """
WITH written AS (
    INSERT INTO engram_entries AS e
        (id, namespace, key, content, content_escaped, metadata, created_at, updated_at, expires_at, tsv, context)
    SELECT id, namespace, key, content, escaped, coalesce(metadata::json, '{}'::json), created_at, updated_at,
           expires_at, tsv::tsvector, context::json
    FROM pg_temp.engram_entry_batch ORDER BY namespace, key
    ON CONFLICT (namespace, key) DO UPDATE SET
        id = CASE WHEN e.expires_at <= %(now)s THEN excluded.id ELSE e.id END,
        created_at = CASE WHEN e.expires_at <= %(now)s THEN excluded.created_at ELSE e.created_at END,
        content = excluded.content,
        content_escaped = excluded.content_escaped,
        context = excluded.context,
        metadata = CASE WHEN NOT %(keep)s OR e.expires_at <= %(now)s THEN excluded.metadata ELSE e.metadata END,
        updated_at = excluded.updated_at,
        expires_at = excluded.expires_at,
        tsv = excluded.tsv
    RETURNING e.namespace, e.key, e.id, e.created_at, e.metadata, e.xmax
)
SELECT namespace, key, id, created_at, metadata FROM written WHERE xmax::text <> '0'
"""

Row = tuple[Any, ...]  # one row of the COPY stream (columns.entry_values)

# A call of more rows goes to the server in parts of this many: the server
# upserts one part while a worker thread builds the next part's rows (the
# tsvector text is most of the client's work), so both cores work at once.
# The first part is smaller: the server waits for it.
PART_ROWS = 2_000
FIRST_PART_ROWS = 500


def can_stage(entries: Sequence[Entry]) -> bool:
    """Whether the staged path applies: enough rows, all with metadata or all without."""
    if len(entries) < MIN_ROWS:
        return False
    given = entries[0].metadata is not None
    return all((e.metadata is not None) is given for e in entries)


def _rows(part: list[Entry]) -> list[Row]:
    return [entry_values(e) for e in part]


def upsert_entries(conn: psycopg.Connection, entries: Sequence[Entry], now: datetime) -> list[Any]:
    """Upsert ``entries`` inside the caller's transaction (see :func:`can_stage`).

    Returns, in input order, ``(id, created_at, metadata)`` as stored for each
    entry that updated an existing key, or was repeated, or came without
    metadata; None for the others (stored as given).
    """
    keys = [(e.namespace, e.key) for e in entries]
    firsts = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1)))  # key -> where it first appears
    repeats = [] if len(firsts) == len(keys) else [i for i, k in enumerate(keys) if firsts[k] != i]
    # Parts go in (namespace, key) order, as the rows within each: the whole batch
    # locks its rows in that order (Python compares str as "C" collates UTF-8).
    first = [entries[i] for i in sorted(firsts.values(), key=keys.__getitem__)]
    keep = entries[0].metadata is None
    updated: dict[tuple[str, str], Any] = {}
    parts = [first[:FIRST_PART_ROWS]]
    parts += [first[i : i + PART_ROWS] for i in range(FIRST_PART_ROWS, len(first), PART_ROWS)]
    with conn.cursor() as cur, ThreadPoolExecutor(1, "engram-bulk-rows") if len(parts) > 1 else nullcontext() as pool:
        cur.execute(_STAGE)
        rows = _rows(parts[0])
        ahead: Future[list[Row]] | None = None
        for k in range(len(parts)):
            if ahead is not None:
                rows = ahead.result()
            cur.execute("TRUNCATE pg_temp.engram_entry_batch")
            with cur.copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            # The next part is built while the server upserts this one. Not sooner: while
            # this thread writes the COPY stream, the worker would hold the GIL from it.
            if pool is not None and k + 1 < len(parts):
                ahead = pool.submit(_rows, parts[k + 1])
            updated.update(((r[0], r[1]), r[2:]) for r in cur.execute(_UPSERT_STAGED, {"now": now, "keep": keep}))
        out: list[Any] = [None] * len(entries)
        for i, e in enumerate(entries):
            row = updated.get(keys[i]) if updated else None
            if row is not None:
                out[i] = row
            elif keep:
                out[i] = (e.id, e.created_at, {})  # new, without metadata
        for i in repeats:  # each after the batch, in input order
            out[i] = cur.execute(q.UPSERT_ENTRY, entry_params(entries[i], now)).fetchone()
    return out
