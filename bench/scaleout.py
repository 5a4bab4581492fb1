"""Scale-out benchmark: engram servers on one PostgreSQL database (issue 11).

    .venv/bin/python bench/scaleout.py           # 5,000 entries, 1,600 requests per cell
    .venv/bin/python bench/scaleout.py --quick   # a smoke run
    .venv/bin/python bench/scaleout.py --json    # machine-readable results

Three parts, one run:

1. Throughput with 1, 2 and 3 ``engram serve`` processes on one PostgreSQL
   database (one schema, preloaded), at concurrency 16: 16 asyncio tasks
   spread round-robin over the first N servers, storing or searching
   (full-text, namespaced). The baseline is N = 1 in the same run.
2. p50 latency at concurrency 1 of one server on PostgreSQL against one on a
   SQLite file with the same data (the baseline: today's server database).
3. Tenancy layout: a schema per project (what the server does) against one
   shared schema where a column tells projects apart, stood in for by the
   namespace (the store's filter inside the index condition), through the
   library: open time of a project, store and search p50 with 20 projects.

On 2 cores shared with the load generator (and other work), more servers
cannot add CPU: scaling shows what the database and the processes cost,
not what N machines would give. Requests are bounded in count; every server
started is stopped and the schemas are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from server import NAMESPACES, WORDS, free_port, pct, sentence, start_server

import engram

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
KEY = "bench-admin-key-" + "x" * 32


async def spread_cell(urls: list[str], op: str, concurrency: int, n: int, seed: int) -> dict:
    """``n`` requests by ``concurrency`` tasks, task i on server i mod len(urls)."""
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [httpx.AsyncClient(base_url=u, headers={"X-API-Key": KEY}, limits=limits, timeout=60) for u in urls]
    latencies: list[float] = []
    counter = iter(range(10**9))
    tag = uuid.uuid4().hex[:6]

    async def worker(client: httpx.AsyncClient, count: int) -> None:
        for _ in range(count):
            i = next(counter)
            start = time.perf_counter()
            if op == "store":
                r = await client.post("/api/v1/memories", json={
                    "key": f"s{tag}-{i}", "content": sentence(random.Random(i)), "namespace": NAMESPACES[i % 10]})
            else:
                r = await client.post("/api/v1/search", json={
                    "query": rng.choice(WORDS), "namespace": NAMESPACES[i % 10], "mode": "fts"})
            latencies.append((time.perf_counter() - start) * 1000)
            if r.status_code >= 400:
                raise RuntimeError(f"{op}: {r.status_code} {r.text}")

    try:
        for c in clients:
            await worker(c, 3)  # warm each server's pools and caches
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*(worker(clients[t % len(clients)], n // concurrency) for t in range(concurrency)))
        wall = time.perf_counter() - start
    finally:
        for c in clients:
            await c.aclose()
    return {"p50_ms": statistics.median(latencies), "p95_ms": pct(latencies, 0.95), "rps": len(latencies) / wall}


def preload(url: str, entries: int) -> None:
    rng = random.Random(42)
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as memory:
        memory.store_many(
            [{"key": f"seed-{i}", "content": sentence(rng), "namespace": NAMESPACES[i % 10]} for i in range(entries)]
        )


def drop_schemas(pg: str, stem: str) -> None:
    with psycopg.connect(pg, autocommit=True) as conn:
        names = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (stem + "%",)).fetchall()
        for (name,) in names:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")  # our own generated names


def throughput(pg_url: str, entries: int, requests: int, reps: int, data_dir: Path) -> dict:
    preload(pg_url, entries)
    procs, urls = [], []
    try:
        for i in range(3):
            port = free_port()
            (data_dir / str(i)).mkdir(parents=True)
            procs.append(start_server(pg_url, port, KEY, data_dir / str(i)))
            urls.append(f"http://127.0.0.1:{port}")
        # Interleaved repetitions, the median kept: load from other work hits 1, 2 and 3 servers alike.
        runs: dict[tuple[str, int], list[dict]] = {}
        for rep in range(reps):
            for op in ("store", "search"):
                for n in (1, 2, 3):
                    cell = asyncio.run(spread_cell(urls[:n], op, 16, requests, seed=rep * 10 + n))
                    runs.setdefault((op, n), []).append(cell)
                    print(f"  rep {rep + 1}: {op} x{n}: {cell['rps']:.0f} req/s", file=sys.stderr)
        return {cell: {m: statistics.median(r[m] for r in results) for m in ("p50_ms", "p95_ms", "rps")}
                for cell, results in runs.items()}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def pg_vs_sqlite(pg_url: str, entries: int, requests: int, data_dir: Path) -> dict:
    data_dir.mkdir(parents=True, exist_ok=True)
    sqlite_url = f"sqlite:///{data_dir / 'engram.db'}"
    preload(sqlite_url, entries)
    out = {}
    for name, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
        port = free_port()
        (data_dir / name).mkdir(parents=True)
        proc = start_server(url, port, KEY, data_dir / name)
        try:
            for op in ("store", "search"):
                out[(name, op)] = asyncio.run(spread_cell([f"http://127.0.0.1:{port}"], op, 1, requests // 4, seed=7))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def tenancy_layouts(pg: str, stem: str, projects: int, per_project: int, queries: int) -> dict:
    """A schema per project against one schema with the project as a filter (the namespace)."""
    rng = random.Random(3)
    settings = {"embedder": "none"}
    results = {}
    # Schema per project: each project is its own Memory on its own schema (as the server opens them).
    opened, memories = [], []
    for p in range(projects):
        start = time.perf_counter()
        memories.append(engram.Memory(settings=engram.load_settings(
            database_url=f"{pg}?schema={stem}_p_{p}", **settings)))
        opened.append((time.perf_counter() - start) * 1000)
    shared = engram.Memory(settings=engram.load_settings(database_url=f"{pg}?schema={stem}_shared", **settings))
    try:
        for p in range(projects):
            items = [{"key": f"k{i}", "content": sentence(rng)} for i in range(per_project)]
            memories[p].store_many(items)
            shared.store_many([{**item, "namespace": f"project-{p}"} for item in items])
        for layout in ("schema", "column"):
            store, search = [], []
            for i in range(queries):
                p = i % projects
                start = time.perf_counter()
                if layout == "schema":
                    memories[p].store(f"q{i}", sentence(rng))
                else:
                    shared.store(f"q{i}", sentence(rng), namespace=f"project-{p}")
                store.append((time.perf_counter() - start) * 1000)
                word = rng.choice(WORDS)
                start = time.perf_counter()
                if layout == "schema":
                    memories[p].search(word, mode="fts")
                else:
                    shared.search(word, namespace=f"project-{p}", mode="fts")
                search.append((time.perf_counter() - start) * 1000)
            results[layout] = {"store_p50_ms": statistics.median(store), "search_p50_ms": statistics.median(search)}
        results["schema"]["open_p50_ms"] = statistics.median(opened)
        results["schema"]["connections_held"] = projects  # each open project keeps pool_size (1) connection
        results["column"]["connections_held"] = 1
    finally:
        for m in memories:
            m.close()
        shared.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=DEFAULT_PG, help="a PostgreSQL database to create schemas in")
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=1600, help="requests per throughput cell")
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions of the throughput cells")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.requests, args.projects, args.reps = 500, 320, 5, 1
    stem = f"bench_scale_{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="engram-bench-scaleout-"))
    try:
        print("throughput with 1, 2, 3 servers ...", file=sys.stderr)
        cells = throughput(f"{args.pg}?schema={stem}_t", args.entries, args.requests, args.reps, data_dir / "t")
        print("PostgreSQL vs SQLite as the server's database ...", file=sys.stderr)
        p50 = pg_vs_sqlite(f"{args.pg}?schema={stem}_l", args.entries, args.requests, data_dir / "l")
        print("tenancy layouts ...", file=sys.stderr)
        layouts = tenancy_layouts(args.pg, stem, args.projects, 200 if args.quick else 500, 100 if args.quick else 400)
    finally:
        drop_schemas(args.pg, stem)
        shutil.rmtree(data_dir, ignore_errors=True)

    report = {
        "entries": args.entries, "requests": args.requests, "reps": args.reps, "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "throughput": [{"op": op, "servers": n, **v, "rps_vs_1": v["rps"] / cells[(op, 1)]["rps"]}
                       for (op, n), v in cells.items()],
        "pg_vs_sqlite": [{"op": op, "sqlite_p50_ms": p50[("sqlite", op)]["p50_ms"],
                          "postgresql_p50_ms": p50[("postgresql", op)]["p50_ms"],
                          "overhead_ms": p50[("postgresql", op)]["p50_ms"] - p50[("sqlite", op)]["p50_ms"],
                          "ratio": p50[("postgresql", op)]["p50_ms"] / p50[("sqlite", op)]["p50_ms"]}
                         for op in ("store", "search")],
        "tenancy": layouts,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"\nServers on one PostgreSQL database, {args.entries} entries, concurrency 16, {args.requests} requests "
          f"per cell, median of {args.reps} interleaved runs (baseline: 1 server)\n")
    print(f"{'op':<8}{'servers':>8}{'req/s':>9}{'vs 1':>7}{'p50 ms':>9}{'p95 ms':>9}")
    for r in report["throughput"]:
        print(f"{r['op']:<8}{r['servers']:>8}{r['rps']:>9.0f}{r['rps_vs_1']:>6.2f}x{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}")
    print("\nOne server, concurrency 1: PostgreSQL vs SQLite (baseline) as the server's database\n")
    print(f"{'op':<8}{'sqlite p50':>11}{'pg p50':>9}{'overhead':>10}{'ratio':>7}")
    for r in report["pg_vs_sqlite"]:
        print(f"{r['op']:<8}{r['sqlite_p50_ms']:>10.2f}m{r['postgresql_p50_ms']:>8.2f}m"
              f"{r['overhead_ms']:>+9.2f}m{r['ratio']:>6.2f}x")
    print(f"\nTenancy layout, {args.projects} projects (library, full-text; column = one schema, "
          "the project as an indexed filter)\n")
    for layout, v in layouts.items():
        extra = f"  open a project p50 {v['open_p50_ms']:.1f} ms" if "open_p50_ms" in v else ""
        print(f"{layout:<8} store p50 {v['store_p50_ms']:.2f} ms  search p50 {v['search_p50_ms']:.2f} ms"
              f"  connections {v['connections_held']}{extra}")
    load = ", ".join(f"{x:.1f}" for x in report["load_average"])
    print(f"\n{report['cpus']} CPUs, load average at the end {load}: servers, clients and PostgreSQL share them")


if __name__ == "__main__":
    main()
