"""Redis benchmark: engram's redis:// store against raw redis-py, side by side.

    .venv/bin/python bench/redis.py            # store/get p50 + client-side search at 1k and 10k
    .venv/bin/python bench/redis.py --quick    # fewer samples

Both sides use the same server and database, each under its own key prefix,
interleaved in small blocks, on the same entries (LoCoMo sentences):

* ``store()`` of one entry  vs  ``HSET`` of the same fields (one command).  Target: p50 <= 2x raw.
  Also shown: the same writes engram's script makes (record + 2 order indexes
  + namespace set) as one raw ``MULTI`` pipeline, for context.
* ``get()``  vs  ``HGETALL`` of the hash.                                     Target: p50 <= 2x raw.
* namespaced ``search()`` (client-side BM25, no raw equivalent) at 1k and 10k
  entries in the namespace: with this process's index warm, right after a
  write to the namespace (its member list is re-read), and cold (a new
  process loads every entry): the measured limit in docs/backends.md.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

# This file is named redis.py: keep its directory off sys.path so that
# `import redis` finds redis-py, and load bench/core.py by its path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

_spec = importlib.util.spec_from_file_location("engram_bench_core", _HERE / "core.py")
core = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["engram_bench_core"] = core
_spec.loader.exec_module(core)  # type: ignore[union-attr]
DEFAULT_DATA, Corpus, fmt_time, make_queries, pct = core.DEFAULT_DATA, core.Corpus, core.fmt_time, core.make_queries, core.pct

from engram import Memory, load_settings  # noqa: E402
from engram._time import to_iso, utcnow  # noqa: E402
from engram.config import Settings  # noqa: E402

DEFAULT_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def open_memory(url: str, prefix: str) -> Memory:
    full = f"{url}?prefix={prefix}"
    extra = {"embedder": "none"} if "embedder" in Settings.model_fields else {}
    return Memory(full, settings=load_settings(database_url=full, **extra))


def raw_fields(it: dict[str, Any]) -> dict[str, str]:
    now = to_iso(utcnow())
    return {
        "id": str(uuid.uuid4()), "namespace": it["namespace"], "key": it["key"], "content": it["content"],
        "metadata": json.dumps(it["metadata"], separators=(",", ":")), "created_at": now, "updated_at": now,
        "expires_at": "",
    }


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for i in range(0, len(keys), 5000):
        client.delete(*keys[i : i + 5000])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=DEFAULT_URL, help="Redis database to use (keys under bench prefixes, deleted after)")
    ap.add_argument("-n", type=int, default=2000, help="timed stores and gets per side")
    ap.add_argument("--queries", type=int, default=100, help="timed searches per size")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    if args.quick:
        args.n, args.queries = 400, 30
    console = Console()
    corpus = Corpus.load(args.data)
    tag = uuid.uuid4().hex[:8]
    eng_prefix, raw_prefix, search_prefix = f"bench-engram-{tag}", f"bench-raw-{tag}", f"bench-search-{tag}"
    client = redis.Redis.from_url(args.url, decode_responses=True)
    memory = open_memory(args.url, eng_prefix)
    rows: list[tuple[str, float, float, float | None, int]] = []
    search_rows: list[tuple[str, float, float, int]] = []
    clock = time.perf_counter
    block = 50
    try:
        items = corpus.items(0, 2 * args.n, seed=5)
        eng_items, raw_items = items[: args.n], items[args.n :]
        raw_hashes = [(f"{raw_prefix}:entry:{len(it['namespace'])}:{it['namespace']}:{it['key']}", raw_fields(it)) for it in raw_items]
        eng_t: list[float] = []
        raw_t: list[float] = []
        multi_t: list[float] = []

        def eng_store(b: int) -> None:
            for it in eng_items[b * block : (b + 1) * block]:
                t0 = clock()
                memory.store(it["key"], it["content"], namespace=it["namespace"], metadata=it["metadata"])
                eng_t.append(clock() - t0)

        def raw_store(b: int) -> None:
            for key, fields in raw_hashes[b * block : (b + 1) * block]:
                t0 = clock()
                client.hset(key, mapping=fields)
                raw_t.append(clock() - t0)

        def raw_multi(b: int) -> None:
            for key, fields in raw_hashes[b * block : (b + 1) * block]:
                t0 = clock()
                pipe = client.pipeline(transaction=True)
                member = f"{fields['updated_at']}|{fields['id']}"
                pipe.hset(key + ":m", mapping=fields)
                pipe.zadd(f"{raw_prefix}:ns:{fields['namespace']}:order", {member: 0})
                pipe.zadd(f"{raw_prefix}:order", {member: 0})
                pipe.sadd(f"{raw_prefix}:namespaces", fields["namespace"])
                pipe.execute()
                multi_t.append(clock() - t0)

        for b in range(args.n // block):
            gc.collect()
            order = (eng_store, raw_store, raw_multi) if b % 2 == 0 else (raw_multi, raw_store, eng_store)
            for run in order:
                run(b)
        rows.append(("store() one entry, p50", pct(eng_t, 0.5), pct(raw_t, 0.5), 2.0, len(eng_t)))
        rows.append(("  vs the same writes as raw MULTI, p50", pct(eng_t, 0.5), pct(multi_t, 0.5), None, len(eng_t)))
        rows.append(("store() one entry, p95", pct(eng_t, 0.95), pct(raw_t, 0.95), None, len(eng_t)))

        eng_g: list[float] = []
        raw_g: list[float] = []

        def eng_get(b: int) -> None:
            for it in eng_items[b * block : (b + 1) * block]:
                t0 = clock()
                memory.get(it["key"], namespace=it["namespace"])
                eng_g.append(clock() - t0)

        def raw_get(b: int) -> None:
            for key, _ in raw_hashes[b * block : (b + 1) * block]:
                t0 = clock()
                client.hgetall(key)
                raw_g.append(clock() - t0)

        for b in range(args.n // block):
            gc.collect()
            for run in (eng_get, raw_get) if b % 2 == 0 else (raw_get, eng_get):
                run(b)
        rows.append(("get() one entry, p50", pct(eng_g, 0.5), pct(raw_g, 0.5), 2.0, len(eng_g)))
        rows.append(("get() one entry, p95", pct(eng_g, 0.95), pct(raw_g, 0.95), None, len(eng_g)))

        # -- client-side search at 1k and 10k entries in one namespace ------------------------
        for size in (1_000, 10_000):
            prefix = f"{search_prefix}-{size}"
            searcher = open_memory(args.url, prefix)
            try:
                docs = corpus.items(0, size, seed=size)
                for d in docs:
                    d["namespace"] = "one"
                for i in range(0, size, 5000):
                    searcher.store_many(docs[i : i + 5000])
                queries = make_queries(docs, args.queries, seed=3)
                cold: list[float] = []
                for text, ns in queries[: max(5, args.queries // 10)]:
                    searcher.backend._scopes.clear()  # noqa: SLF001 - measuring the cold path on purpose
                    t0 = clock()
                    searcher.search(text, namespace=ns)
                    cold.append(clock() - t0)
                warm: list[float] = []
                for text, ns in queries:
                    t0 = clock()
                    searcher.search(text, namespace=ns)
                    warm.append(clock() - t0)
                after_write: list[float] = []
                for i, (text, ns) in enumerate(queries[: max(5, args.queries // 5)]):
                    searcher.store(f"w{i}", f"a fresh write {i}", namespace=ns)
                    t0 = clock()
                    searcher.search(text, namespace=ns)
                    after_write.append(clock() - t0)
                search_rows.append(
                    (f"{size:,} entries in the namespace", pct(warm, 0.5), pct(after_write, 0.5), pct(cold, 0.5), len(warm))
                )
            finally:
                searcher.close()
                drop_prefix(client, prefix)
    finally:
        memory.close()
        drop_prefix(client, eng_prefix)
        drop_prefix(client, raw_prefix)

    table = Table(title="engram redis:// vs raw redis-py (same server, same entries)")
    for col in ("benchmark", "engram", "raw redis-py", "ratio", "target", "ok", "n"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for name, eng, base, target, n in rows:
        ratio = eng / base if base else float("inf")
        ok = "" if target is None else ("[green]yes[/green]" if ratio <= target else "[red]no[/red]")
        table.add_row(name, fmt_time(eng), fmt_time(base), f"{ratio:.2f}x", "-" if target is None else f"<= {target:g}x", ok, str(n))
    console.print(table)
    t2 = Table(title="redis:// namespaced search() p50, client-side BM25 (no search module)")
    for col in ("namespace size", "cache warm", "after a write", "cold (new process)", "n"):
        t2.add_column(col, justify="left" if col == "namespace size" else "right")
    for name, warm_p50, write_p50, cold_p50, n in search_rows:
        t2.add_row(name, fmt_time(warm_p50), fmt_time(write_p50), fmt_time(cold_p50), str(n))
    console.print(t2)
    info = client.info("server")
    console.print(f"Redis {info['redis_version']}, redis-py {redis.__version__}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
