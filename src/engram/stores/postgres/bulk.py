"""Bulk upserts of entries on PostgreSQL: a batch goes in with ``COPY`` to a
temporary table, then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``.

One statement per entry (even pipelined) pays planning, a round of the
protocol and an index descent per row; ``COPY`` streams the rows, and the
single upsert runs them as one plan. Rows are upserted in (namespace, key)
order, the order every process locks them in, so concurrent batches with
overlapping keys never deadlock. One ``INSERT ... ON CONFLICT`` may not touch
a row twice: a key repeated in the batch is applied after it, one row at a
time in input order, so every key ends up as if stored one by one.

The tsvector text of each row (``search/tsquery.py``, in Python) is computed
as the row is written to the ``COPY`` stream, so the server stores the rows
sent before it meanwhile (on another core) instead of waiting for them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from engram.models import Entry
from engram.search.tsquery import document_tsvector
from engram.stores.postgres import sql as q

# Below this many rows, the temporary table costs more than it saves.
MIN_ROWS = 32

# ON COMMIT DELETE ROWS: nothing outlives a transaction; TRUNCATE below also
# empties it between the batches of one (an import is one transaction).
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS engram_entry_batch (
    id text COLLATE "C", namespace text COLLATE "C", key text COLLATE "C", content text, escaped boolean,
    metadata json, created_at timestamptz, updated_at timestamptz, expires_at timestamptz, tsv tsvector,
    context json
) ON COMMIT DELETE ROWS
"""
_COPY = (
    "COPY pg_temp.engram_entry_batch"
    " (id, namespace, key, content, escaped, metadata, created_at, updated_at, expires_at, tsv, context) FROM STDIN"
)
# The rules of UPSERT_ENTRY, for a batch whose entries all came with metadata
# (%(keep)s false: it replaces the stored one) or all without (true: a live
# entry keeps its own). Only the rows that were updated are returned (xmax is
# set on the row an ON CONFLICT update wrote).
_UPSERT_STAGED = """
WITH written AS (
    INSERT INTO engram_entries AS e
        (id, namespace, key, content, content_escaped, metadata, created_at, updated_at, expires_at, tsv, context)
    SELECT id, namespace, key, content, escaped, coalesce(metadata, '{}'::json), created_at, updated_at,
           expires_at, tsv, context
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

Params = dict[str, Any]  # UPSERT_ENTRY's parameters of one entry (entry_params)


def can_stage(entries: Sequence[Entry]) -> bool:
    """Whether the staged path applies: enough rows, all with metadata or all without."""
    if len(entries) < MIN_ROWS:
        return False
    given = entries[0].metadata is not None
    return all((e.metadata is not None) is given for e in entries)


def upsert_entries(
    conn: psycopg.Connection, entries: Sequence[Entry], params: Sequence[Params], now: datetime
) -> list[Any]:
    """Upsert ``entries``, whose ``params`` lack the tsvector text (inside the caller's
    transaction; see :func:`can_stage`).

    Returns, in input order, ``(id, created_at, metadata)`` as stored for each
    entry that updated an existing key, or was repeated, or came without
    metadata; None for the others (stored as given).
    """
    seen: set[tuple[str, str]] = set()
    first: list[int] = []
    repeats: list[int] = []
    for i, p in enumerate(params):
        k = (p["namespace"], p["key"])
        if k in seen:
            repeats.append(i)
        else:
            seen.add(k)
            first.append(i)
    keep = params[0]["metadata"] is None
    with conn.cursor() as cur:
        cur.execute(_STAGE)
        cur.execute("TRUNCATE pg_temp.engram_entry_batch")
        with cur.copy(_COPY) as copy:
            for i in first:
                p, e = params[i], entries[i]
                tsv = document_tsvector(e.namespace, e.key, e.content)
                copy.write_row(
                    (p["id"], p["namespace"], p["key"], p["content"], p["escaped"], p["metadata"],
                     p["created_at"], p["updated_at"], p["expires_at"], tsv, p["context"])
                )  # fmt: skip
        updated = {(r[0], r[1]): r[2:] for r in cur.execute(_UPSERT_STAGED, {"now": now, "keep": keep})}
        out: list[Any] = [None] * len(params)
        for i, p in enumerate(params):
            row = updated.get((p["namespace"], p["key"])) if updated else None
            if row is not None:
                out[i] = row
            elif keep:
                out[i] = (p["id"], p["created_at"], {})  # new, without metadata
        for i in repeats:  # each after the batch, in input order
            e = entries[i]
            p = {**params[i], "tsv": document_tsvector(e.namespace, e.key, e.content)}
            out[i] = cur.execute(q.UPSERT_ENTRY, p).fetchone()
    return out
