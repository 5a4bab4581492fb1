"""Cache layer benchmark (issue 12): its overhead, the search cache, the embedding cache on re-import.

    .venv/bin/python bench/cache.py            # everything (a few minutes on 2 busy cores)
    .venv/bin/python bench/cache.py --quick    # fewer samples

One run, each side interleaved with its baseline in small blocks, so load from
other processes hits both alike (compare ratios, not absolute times):

1. ``Cache.get`` / ``Cache.set`` p50 of a small JSON value: in-memory vs a raw
   ``dict``; Redis vs raw redis-py ``GET`` / ``SET`` of the same JSON text on the
   same server. Target: <= 2x. Also shown, for context: a ``dict`` holding JSON
   text (the serialization any cache of JSON values pays).
2. The search cache: ``Memory.search`` p50 over a SQLite store of LoCoMo
   sentences, repeated identical queries answered from the cache (in-memory and
   Redis) vs the same searches with the cache off, and the cost it adds to a
   search it cannot answer (lookup + keep).
3. The embedding cache on re-import: an export of N entries without vectors is
   imported into a fresh store with the local embedder (all-MiniLM-L6-v2, no
   cache: the baseline); then, with a Redis cache, into a fresh store at one URL
   by one process, the file removed, and into a fresh store at the same URL by a
   second process. Prints the second process's hit rate and the time saved.

Redis: ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/14``), keys under
a fresh prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# bench/ holds a redis.py: keep this directory off sys.path so `import redis` finds redis-py.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import redis
from rich.console import Console
from rich.table import Table

_spec = importlib.util.spec_from_file_location("engram_bench_core", _HERE / "core.py")
core = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["engram_bench_core"] = core
_spec.loader.exec_module(core)  # type: ignore[union-attr]

import engram
from engram.cache import Cache, InMemoryCacheBackend
from engram.cache.redis import RedisCacheBackend

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
VALUE = {"user": "ada", "tags": ["a", "b"], "score": 0.5, "note": "a small JSON value of about 80 bytes"}
console = Console()


def find_data() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "locomo" / "locomo-dev.json"
        if candidate.is_file():
            return candidate
    return core.DEFAULT_DATA


def per_op_p50(sides: dict[str, Callable[[int], None]], blocks: int, per_block: int) -> dict[str, float]:
    """Median seconds per op of each side: ``side(n)`` runs n ops; blocks interleaved round-robin."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(blocks):
        for name, run in sides.items():
            start = time.perf_counter()
            run(per_block)
            samples[name].append((time.perf_counter() - start) / per_block)
    return {name: statistics.median(values) for name, values in samples.items()}


def fmt(seconds: float) -> str:
    return f"{seconds * 1e9:.0f} ns" if seconds < 1e-6 else core.fmt_time(seconds)


def ops_table(rows: list[tuple[str, float, str, float, str]]) -> None:
    table = Table(title="cache get/set p50 per op (interleaved blocks)")
    for column in ("op", "engram", "baseline", "baseline p50", "ratio", "target"):
        table.add_column(column)
    for op, ours, base_name, base, target in rows:
        ratio = ours / base
        colour = "green" if target == "-" or ratio <= float(target.strip("<=x ")) else "red"
        table.add_row(op, fmt(ours), base_name, fmt(base), f"[{colour}]{ratio:.2f}x[/{colour}]", target)
    console.print(table)


def bench_ops(quick: bool, prefix: str) -> None:
    blocks, per = (30, 200) if quick else (101, 500)
    keys = [f"key-{i}" for i in range(1000)]
    text = json.dumps(VALUE, separators=(",", ":"))

    plain: dict[str, Any] = {}
    texts: dict[str, str] = {}
    memory_cache = Cache(InMemoryCacheBackend(10_000), "bench:u:")
    for k in keys:
        plain[k], texts[k] = VALUE, text
        memory_cache.set(k, VALUE)

    def loop(op: Callable[[str], Any]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for i in range(n):
                op(keys[i % 1000])

        return run

    mem = per_op_p50(
        {
            "dict get": loop(plain.get),
            "dict set": loop(lambda k: plain.__setitem__(k, VALUE)),
            "json dict get": loop(lambda k: json.loads(texts[k])),
            "json dict set": loop(lambda k: texts.__setitem__(k, json.dumps(VALUE))),
            "cache get": loop(memory_cache.get),
            "cache set": loop(lambda k: memory_cache.set(k, VALUE)),
        },
        blocks, per,
    )
    backend = RedisCacheBackend(REDIS_URL, key_prefix=prefix, max_connections=4)
    redis_cache = Cache(backend, "bench:u:")
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    raw_prefix = f"{prefix}:raw:"
    for k in keys:
        redis_cache.set(k, VALUE)
        client.set(raw_prefix + k, text)
    rblocks, rper = (20, 50) if quick else (61, 100)
    red = per_op_p50(
        {
            "raw get": loop(lambda k: json.loads(client.get(raw_prefix + k))),
            "raw set": loop(lambda k: client.set(raw_prefix + k, json.dumps(VALUE))),
            "cache get": loop(redis_cache.get),
            "cache set": loop(lambda k: redis_cache.set(k, VALUE)),
        },
        rblocks, rper,
    )
    client.close()
    backend.close()
    ops_table([
        ("in-memory get", mem["cache get"], "dict get", mem["dict get"], "<= 2x"),
        ("in-memory set", mem["cache set"], "dict set", mem["dict set"], "<= 2x"),
        ("in-memory get", mem["cache get"], "dict of JSON text + json.loads", mem["json dict get"], "-"),
        ("in-memory set", mem["cache set"], "dict of JSON text + json.dumps", mem["json dict set"], "-"),
        ("redis get", red["cache get"], "redis-py GET + json.loads", red["raw get"], "<= 2x"),
        ("redis set", red["cache set"], "redis-py SET + json.dumps", red["raw set"], "<= 2x"),
    ])


def bench_search(quick: bool, prefix: str, data: Path, workdir: Path) -> None:
    corpus = core.Corpus.load(data)
    n = 2_000 if quick else 10_000
    items = corpus.items(0, n, seed=7)
    queries = core.make_queries(items, 50 if quick else 200, seed=11)
    url = f"sqlite:///{workdir / 'search.db'}"
    with engram.Memory(url) as loader:
        loader.store_many(items)
    off = engram.Memory(settings=engram.load_settings(database_url=url))
    on_memory = engram.Memory(
        settings=engram.load_settings(database_url=url, storage={"cache": {"type": "in-memory", "search_results": True}})
    )
    redis_section = {"type": "redis", "url": REDIS_URL, "search_results": True, "options": {"keyPrefix": prefix}}
    on_redis = engram.Memory(settings=engram.load_settings(database_url=url, storage={"cache": redis_section}))
    memories = {"off": off, "in-memory": on_memory, "redis": on_redis}

    def searches(memory: engram.Memory) -> Callable[[int], None]:
        def run(_: int) -> None:
            for q, ns in queries:
                memory.search(q, namespace=ns, limit=10)

        return run

    for memory in (on_memory, on_redis):  # two passes: the first creates the generations, the second fills
        searches(memory)(0)
        searches(memory)(0)
    rounds = 5 if quick else 15
    hit = per_op_p50({name: searches(m) for name, m in memories.items()}, rounds, 1)
    hit = {k: v / len(queries) for k, v in hit.items()}

    def misses(memory: engram.Memory) -> Callable[[int], None]:  # a write first: every search misses
        def run(_: int) -> None:
            for q, ns in queries:
                memory.store("bench-write", "x", namespace=ns)
                memory.search(q, namespace=ns, limit=10)

        return run

    miss = per_op_p50({name: misses(m) for name, m in memories.items()}, max(3, rounds // 3), 1)
    miss = {k: v / len(queries) for k, v in miss.items()}
    for memory in memories.values():
        memory.close()
    table = Table(title=f"search p50 per query, {n} entries in 100 namespaces, {len(queries)} queries repeated")
    for column in ("case", "cache off", "in-memory cache", "ratio", "redis cache", "ratio"):
        table.add_column(column)
    table.add_row(
        "repeat (answered from the cache)", core.fmt_time(hit["off"]), core.fmt_time(hit["in-memory"]),
        f"{hit['in-memory'] / hit['off']:.2f}x", core.fmt_time(hit["redis"]), f"{hit['redis'] / hit['off']:.2f}x",
    )
    table.add_row(
        "after a write (store + search)", core.fmt_time(miss["off"]), core.fmt_time(miss["in-memory"]),
        f"{miss['in-memory'] / miss['off']:.2f}x", core.fmt_time(miss["redis"]), f"{miss['redis'] / miss['off']:.2f}x",
    )
    console.print(table)


def import_once(url: str, export: Path, cache: dict[str, Any] | None) -> dict[str, float]:
    """Import ``export`` into the (fresh) store at ``url`` with the local embedder; time and texts embedded."""
    more: dict[str, Any] = {"storage": {"cache": cache}} if cache else {"embedding_cache_size": 0}
    settings = engram.load_settings(database_url=url, embedder="local", **more)
    with engram.Memory(settings=settings) as memory:
        embedder = memory.embedder
        assert embedder is not None
        memory.embed(["warm the model up"])
        embedded = [0]
        original = embedder.embed

        def counting(texts: list[str]) -> Any:
            embedded[0] += len(texts)
            return original(texts)

        embedder.embed = counting  # type: ignore[method-assign]
        start = time.perf_counter()
        memory.import_(export)
        return {"seconds": time.perf_counter() - start, "embedded": embedded[0]}


def bench_reimport(quick: bool, prefix: str, data: Path, workdir: Path) -> None:
    n = 300 if quick else 1_000
    items = core.Corpus.load(data).items(0, n, seed=3)
    export = workdir / "export.jsonl"
    with engram.Memory(settings=engram.load_settings(database_url=f"sqlite:///{workdir / 'src.db'}", embedder="none")) as src:
        src.store_many(items)
        src.export(export)
    cache = {"type": "redis", "url": REDIS_URL, "options": {"keyPrefix": prefix}}
    base = import_once(f"sqlite:///{workdir / 'baseline.db'}", export, None)
    target = workdir / "restored.db"
    first = import_once(f"sqlite:///{target}", export, cache)
    for leftover in workdir.glob("restored.db*"):
        leftover.unlink()
    child = subprocess.run(
        [sys.executable, __file__, "--child-import", f"sqlite:///{target}", str(export), json.dumps(cache)],
        capture_output=True, text=True, check=True,
    )
    second = json.loads(child.stdout.strip().splitlines()[-1])
    table = Table(title=f"re-import of an export of {n} entries without vectors (local embedder)")
    for column in ("import", "time", "texts embedded", "entries not embedded", "vs no cache"):
        table.add_column(column)
    for name, run in (("no cache (baseline)", base), ("redis cache, process 1, cold", first), ("redis cache, process 2, same URL", second)):
        rate = 1 - run["embedded"] / n
        table.add_row(name, core.fmt_time(run["seconds"]), str(int(run["embedded"])), f"{rate:.0%}",
                      f"{run['seconds'] / base['seconds']:.2f}x")
    console.print(table)
    console.print(
        f"time saved by the shared cache in process 2: {core.fmt_time(base['seconds'] - second['seconds'])} "
        f"(entries not embedded without any cache: repeated texts of the export, embedded once per batch)"
    )


def drop(prefix: str) -> None:
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.unlink(*keys[i : i + 1000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, smaller stores")
    parser.add_argument("--only", choices=["ops", "search", "reimport"], action="append", help="run only these parts")
    parser.add_argument("--data", type=Path, default=find_data(), help="LoCoMo JSON (default: ../shared/data/locomo)")
    parser.add_argument("--child-import", nargs=3, metavar=("URL", "EXPORT", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        url, export, cache = args.child_import
        print(json.dumps(import_once(url, Path(export), json.loads(cache))))
        return
    only = set(args.only or ["ops", "search", "reimport"])
    prefix = f"engram-bench-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="engram-cache-bench-"))
    try:
        if "ops" in only:
            bench_ops(args.quick, prefix)
        if "search" in only:
            bench_search(args.quick, prefix, args.data, workdir)
        if "reimport" in only:
            bench_reimport(args.quick, prefix, args.data, workdir)
    finally:
        drop(prefix)
        shutil.rmtree(workdir, ignore_errors=True)
    console.print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
