"""PostgreSQL benchmark: engram's postgresql:// store against raw psycopg, side by side.

    .venv/bin/python bench/postgres.py                # 100k entries in 100 namespaces
    .venv/bin/python bench/postgres.py --quick        # 10k entries, fewer samples (seconds)
    .venv/bin/python bench/postgres.py --index-study  # also compare namespace-filter designs

Both sides run on the same server, interleaved in small blocks so load from
other processes hits both alike. ``store_many`` loads the same entries into
two schemas (engram's and a raw one); ``store()`` and ``search()`` then run
both sides against engram's schema, the very same table and indexes. The
baseline is plain psycopg 3 on one open autocommit connection running the
statements the store issues, with every value prepared beforehand (tsvector
and tsquery text included):

* ``store()`` of one entry  vs  the upsert statement.             Target: p50 <= 2x raw.
* namespaced ``search()`` (1-2 words of a stored entry, limit 10)
  vs  the search statement with its tsquery.                      Target: p50 <= 2x raw.
* ``store_many()`` of 100k entries, 10k a call  vs  executemany of the upsert,
  and  vs  ``COPY`` of the same rows straight into the table (the fastest
  way in, no upsert), each with every value prepared.    Target: <= 1.5x raw.

So the ratio is what engram adds to the driver: validation, text analysis,
the pool checkout (with ``pool_pre_ping``, the default, one extra round trip)
and building records. ``--index-study`` times the raw search three ways at the
same size: the namespace lexeme inside the tsvector (what engram does), a
btree_gin index over (namespace, tsv), and a plain GIN index with the
namespace filtered after it.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import DEFAULT_DATA, Corpus, fmt_time, make_queries, pct  # noqa: E402

from engram import Memory, load_settings  # noqa: E402
from engram._time import utcnow  # noqa: E402
from engram.config import Settings  # noqa: E402
from engram.models import Entry  # noqa: E402
from engram.search.query import parse  # noqa: E402
from engram.search.tsquery import scoped_tsquery  # noqa: E402
from engram.stores.postgres import sql as q  # noqa: E402
from engram.stores.postgres.store import entry_params, rank_tsquery  # noqa: E402

COPY_FIELDS = ("id", "namespace", "key", "content", "escaped", "metadata", "created_at", "updated_at", "expires_at", "tsv")
COPY_ENTRIES = (
    "COPY engram_entries (id, namespace, key, content, content_escaped, metadata, created_at, updated_at,"
    " expires_at, tsv) FROM STDIN"
)
DEFAULT_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def open_memory(url: str, schema: str) -> Memory:
    full = f"{url}?schema={schema}&pool_size=2&max_overflow=2"
    extra = {"embedder": "none"} if "embedder" in Settings.model_fields else {}
    return Memory(full, settings=load_settings(database_url=full, **extra))


def entries_of(items: list[dict[str, Any]]) -> list[Entry]:
    now = utcnow()
    return [
        Entry.model_construct(
            id=str(uuid.uuid4()), key=it["key"], namespace=it["namespace"], content=it["content"],
            metadata=it["metadata"], created_at=now, updated_at=now, expires_at=None,
        )
        for it in items
    ]


def interleave(blocks: int, engram_block: Any, raw_block: Any) -> None:
    for b in range(blocks):
        gc.collect()
        for run in (engram_block, raw_block) if b % 2 == 0 else (raw_block, engram_block):
            run(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database to use (schemas are created and dropped)")
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--store-n", type=int, default=1000, help="timed single stores per side")
    ap.add_argument("--queries", type=int, default=1000, help="timed searches per side")
    ap.add_argument("--quick", action="store_true", help="10k entries, 200 samples")
    ap.add_argument("--index-study", action="store_true", help="also time three namespace-filter designs (raw SQL)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    if args.quick:
        args.entries, args.store_n, args.queries = 10_000, 200, 200
    console = Console()
    corpus = Corpus.load(args.data)
    tag = uuid.uuid4().hex[:8]
    eng_schema, raw_schema = f"bench_engram_{tag}", f"bench_raw_{tag}"
    rows: list[tuple[str, float, float, float | None, int]] = []
    study: list[tuple[str, float, float]] = []

    copy_schema = f"bench_copy_{tag}"
    memory = open_memory(args.url, eng_schema)
    for schema in (raw_schema, copy_schema):
        open_memory(args.url, schema).close()  # creates the identical schema for the baselines
    raw = psycopg.connect(args.url, autocommit=True, options=f"-c TimeZone=UTC -c search_path={raw_schema}")
    copy_conn = psycopg.connect(args.url, autocommit=True, options=f"-c TimeZone=UTC -c search_path={copy_schema}")
    same = psycopg.connect(args.url, autocommit=True, options=f"-c TimeZone=UTC -c search_path={eng_schema}")
    try:
        # -- load the same data on every side (store_many vs executemany vs COPY, timed) ------
        items = corpus.items(0, args.entries, seed=7)
        chunk = 10_000
        eng_load, raw_load, copy_load, prep_load = [], [], [], []
        with console.status(f"loading {args.entries:,} entries into each schema"):
            for b, i in enumerate(range(0, len(items), chunk)):
                part = items[i : i + chunk]
                t0 = time.perf_counter()
                params = [entry_params(e, utcnow()) for e in entries_of(part)]  # tsvector text included
                prep_load.append(time.perf_counter() - t0)
                copied = [tuple(p[c] for c in COPY_FIELDS) for p in params]  # the same values, in COPY's order

                def eng_side() -> None:
                    t0 = time.perf_counter()
                    memory.store_many(part)
                    eng_load.append(time.perf_counter() - t0)

                def raw_side() -> None:
                    t0 = time.perf_counter()
                    with raw.transaction(), raw.cursor() as cur:
                        cur.executemany(q.UPSERT_ENTRY, params)
                    raw_load.append(time.perf_counter() - t0)

                def copy_side() -> None:
                    # The fastest way in: COPY straight into the table (no upsert), values prepared.
                    t0 = time.perf_counter()
                    with copy_conn.transaction(), copy_conn.cursor() as cur, cur.copy(COPY_ENTRIES) as cp:
                        for row in copied:
                            cp.write_row(row)
                    copy_load.append(time.perf_counter() - t0)

                sides = (eng_side, raw_side, copy_side)
                for run in sides if b % 2 == 0 else sides[::-1]:
                    run()
            raw.execute(f"VACUUM ANALYZE {raw_schema}.engram_entries")
            memory.vacuum()
        n_chunks = len(eng_load)
        label = f"store_many() {args.entries // 1000}k entries, {chunk // 1000}k a call"
        rows.append((f"{label}, vs executemany", sum(eng_load), sum(raw_load), 1.5, n_chunks))
        rows.append((f"{label}, vs COPY", sum(eng_load), sum(copy_load), 1.5, n_chunks))
        # What engram adds besides the text analysis both sides need (search/tsquery.py in Python).
        rows.append((f"{label}, vs executemany + the same tsvector text", sum(eng_load), sum(raw_load) + sum(prep_load), None, n_chunks))

        # -- store(): one entry --------------------------------------------------------------
        extra = corpus.items(args.entries, args.entries + 2 * args.store_n, seed=8)
        eng_items = extra[: args.store_n]
        raw_params = [entry_params(e, utcnow()) for e in entries_of(extra[args.store_n :])]
        block = 50
        eng_t: list[float] = []
        raw_t: list[float] = []
        clock = time.perf_counter

        def eng_store(b: int) -> None:
            for it in eng_items[b * block : (b + 1) * block]:
                t0 = clock()
                memory.store(it["key"], it["content"], namespace=it["namespace"], metadata=it["metadata"])
                eng_t.append(clock() - t0)

        def raw_store_block(b: int) -> None:
            for p in raw_params[b * block : (b + 1) * block]:
                t0 = clock()
                same.execute(q.UPSERT_ENTRY, p).fetchone()
                raw_t.append(clock() - t0)

        interleave(args.store_n // block, eng_store, raw_store_block)
        rows.append(("store() one entry, p50", pct(eng_t, 0.5), pct(raw_t, 0.5), 2.0, len(eng_t)))
        rows.append(("store() one entry, p95", pct(eng_t, 0.95), pct(raw_t, 0.95), None, len(eng_t)))

        # -- namespaced search ----------------------------------------------------------------
        queries = make_queries(items, args.queries, seed=9)
        now = utcnow()
        raw_sql = [q.search_sql(scoped_tsquery(parse(t), ns), rank_tsquery(parse(t)), {}, 10, now) for t, ns in queries]
        for t, ns in queries[:50]:  # warm both sides alike
            memory.search(t, namespace=ns)
        for sql, params in raw_sql[:50]:
            same.execute(sql, params).fetchall()
        eng_s: list[float] = []
        raw_s: list[float] = []
        hits: list[int] = []

        def eng_search(b: int) -> None:
            for t, ns in queries[b * block : (b + 1) * block]:
                t0 = clock()
                result = memory.search(t, namespace=ns, limit=10)
                eng_s.append(clock() - t0)
                hits.append(result.count)

        def raw_search(b: int) -> None:
            for sql, params in raw_sql[b * block : (b + 1) * block]:
                t0 = clock()
                same.execute(sql, params).fetchall()
                raw_s.append(clock() - t0)

        interleave(args.queries // block, eng_search, raw_search)
        label = f"search() namespaced, {args.entries // 1000}k entries"
        rows.append((f"{label}, p50", pct(eng_s, 0.5), pct(raw_s, 0.5), 2.0, len(eng_s)))
        rows.append((f"{label}, p95", pct(eng_s, 0.95), pct(raw_s, 0.95), None, len(eng_s)))
        console.log(f"search: mean {statistics.mean(hits):.1f} hits per query (limit 10)")

        if args.index_study:
            study = index_study(raw, raw_schema, queries, console)
    finally:
        memory.close()
        same.close()
        copy_conn.close()
        raw.execute(f"DROP SCHEMA IF EXISTS {copy_schema} CASCADE")
        raw.execute(f"DROP SCHEMA IF EXISTS {eng_schema} CASCADE")
        raw.execute(f"DROP SCHEMA IF EXISTS {raw_schema} CASCADE")
        raw.close()

    table = Table(title=f"engram postgresql:// vs raw psycopg ({args.entries:,} entries, 100 namespaces)")
    for col in ("benchmark", "engram", "raw psycopg", "ratio", "target", "ok", "n"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for name, eng, base, target, n in rows:
        ratio = eng / base if base else float("inf")
        ok = "" if target is None else ("[green]yes[/green]" if ratio <= target else "[red]no[/red]")
        table.add_row(name, fmt_time(eng), fmt_time(base), f"{ratio:.2f}x", "-" if target is None else f"<= {target:g}x", ok, str(n))
    console.print(table)
    if study:
        t2 = Table(title="namespaced search designs, raw SQL, same data (p50 / p95)")
        for col in ("design", "p50", "p95"):
            t2.add_column(col, justify="left" if col == "design" else "right")
        for name, p50, p95 in study:
            t2.add_row(name, fmt_time(p50), fmt_time(p95))
        console.print(t2)
    console.print(f"PostgreSQL {psycopg.connect(args.url).info.server_version}, psycopg {psycopg.__version__}, {os.cpu_count()} CPUs")


def index_study(raw: psycopg.Connection, schema: str, queries: list[tuple[str, str]], console: Console) -> list[tuple[str, float, float]]:
    """Time the same namespaced queries under three designs of the namespace filter."""
    now = utcnow()
    with console.status("index study: building a btree_gin (namespace, tsv) index"):
        raw.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        raw.execute(f"CREATE INDEX IF NOT EXISTS study_ns_tsv ON {schema}.engram_entries USING gin (namespace, tsv)")
        raw.execute(f"ANALYZE {schema}.engram_entries")
    lexeme = "namespace lexeme inside the tsvector, GIN (tsv) (engram)"
    btree_gin = "btree_gin GIN (namespace, tsv), WHERE namespace = $1"
    planner = "GIN (tsv) + btree (namespace, ...), WHERE namespace = $1"
    designs: dict[str, list[tuple[Any, dict[str, Any]]]] = {lexeme: [], btree_gin: [], planner: []}
    for text, ns in queries:
        node = parse(text)
        designs[lexeme].append(q.search_sql(scoped_tsquery(node, ns), rank_tsquery(node), {}, 10, now))
        sql, params = q.search_sql(scoped_tsquery(node, None), rank_tsquery(node), {}, 10, now)
        with_ns = sql.replace("WHERE e.tsv @@", "WHERE e.namespace = %(ns)s AND e.tsv @@")
        designs[btree_gin].append((with_ns, {**params, "ns": ns}))
        designs[planner].append((with_ns, {**params, "ns": ns}))
    # The first two designs are timed interleaved, query by query (both indexes exist);
    # the third after dropping the btree_gin index.
    times: dict[str, list[float]] = {name: [] for name in designs}
    for name in designs:
        for sql, params in designs[name][:50]:
            raw.execute(sql, params).fetchall()
    for i in range(len(queries)):
        for name in (lexeme, btree_gin) if i % 2 == 0 else (btree_gin, lexeme):
            sql, params = designs[name][i]
            t0 = time.perf_counter()
            raw.execute(sql, params).fetchall()
            times[name].append(time.perf_counter() - t0)
    raw.execute("DROP INDEX IF EXISTS study_ns_tsv")
    for sql, params in designs[planner][:50]:
        raw.execute(sql, params).fetchall()
    for sql, params in designs[planner]:
        t0 = time.perf_counter()
        raw.execute(sql, params).fetchall()
        times[planner].append(time.perf_counter() - t0)
    out = [(name, pct(t, 0.5), pct(t, 0.95)) for name, t in times.items()]
    return out


if __name__ == "__main__":
    random.seed(0)
    main()
