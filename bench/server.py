"""Server benchmark: REST over loopback (httpx) vs the library in-process, same data.

    .venv/bin/python bench/server.py            # 5,000 entries, 400 requests per cell at concurrency 1
    .venv/bin/python bench/server.py --quick    # a smoke run (seconds)
    .venv/bin/python bench/server.py --json     # machine-readable results

One SQLite file, preloaded through the library. The library side calls
``Memory.store`` / ``Memory.search`` on that file (concurrency 16 = 16 threads);
the server side runs ``engram serve`` as a separate process on that same file
(its default project) and is driven by httpx over 127.0.0.1 with keep-alive
(concurrency 16 = 16 asyncio tasks on one AsyncClient). Search is full-text
(``mode="fts"``) on both sides, namespaced, 1-2 words drawn from the data, so
both sides do identical store work and the difference is the server's cost:
HTTP, JSON, authentication, the thread hop, and for writes the transaction log.

Target (issue 6): server p50 <= library p50 + 2 ms at concurrency 1.
Every request loop is bounded in count and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

import engram

WORDS = (
    "alice bob carol garden hiking trip coffee tea music guitar piano dog cat greyhound rescue nurse night "
    "shift hospital vegan vegetarian mushrooms dolomites september spring budget flight hotel museum river "
    "mountain bicycle marathon recipe pasta curry birthday sister brother project deadline meeting report"
).split()
NAMESPACES = [f"user:{i}" for i in range(10)]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- library side ---------------------------------------------------------------------------
def library_cell(memory: engram.Memory, op: str, concurrency: int, n: int, rng: random.Random) -> dict:
    counter = iter(range(10**9))
    lock = threading.Lock()

    def one(_: int) -> float:
        with lock:
            i = next(counter)
        start = time.perf_counter()
        if op == "store":
            memory.store(f"lib-{concurrency}-{i}", sentence(random.Random(i)), namespace=NAMESPACES[i % 10])
        else:
            memory.search(rng.choice(WORDS), namespace=NAMESPACES[i % 10], mode="fts")
        return (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    if concurrency == 1:
        latencies = [one(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    return {"p50_ms": statistics.median(latencies), "p95_ms": pct(latencies, 0.95), "rps": n / wall}


# -- server side ----------------------------------------------------------------------------
async def server_cell(url: str, key: str, op: str, concurrency: int, n: int, rng: random.Random) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    counter = iter(range(10**9))
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        async def worker(count: int) -> None:
            for _ in range(count):
                i = next(counter)
                start = time.perf_counter()
                if op == "store":
                    r = await client.post("/api/v1/memories", json={
                        "key": f"srv-{concurrency}-{i}", "content": sentence(random.Random(i)),
                        "namespace": NAMESPACES[i % 10]})
                else:
                    r = await client.post("/api/v1/search", json={
                        "query": rng.choice(WORDS), "namespace": NAMESPACES[i % 10], "mode": "fts"})
                latencies.append((time.perf_counter() - start) * 1000)
                if r.status_code >= 400:
                    raise RuntimeError(f"{op}: {r.status_code} {r.text}")

        await worker(5)  # warm the connection(s) and the server's caches
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {"p50_ms": statistics.median(latencies), "p95_ms": pct(latencies, 0.95), "rps": len(latencies) / wall}


def start_server(db_url: str, port: int, key: str, data_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env["ENGRAM_ADMIN_KEY"] = key
    env["ENGRAM_EMBEDDER"] = "none"
    log = open(data_dir / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engram.cli", "--db", db_url, "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"the server did not start; see {data_dir / 'server.log'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=400, help="requests per cell at concurrency 1 (x4 at 16)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.requests = 500, 64
    rng = random.Random(42)
    data_dir = Path(tempfile.mkdtemp(prefix="engram-bench-server-"))
    db_url = f"sqlite:///{data_dir / 'engram.db'}"
    key = "bench-admin-key-" + "x" * 32
    try:
        # Full-text only on both sides: this measures the server's cost, not the embedder's.
        with engram.Memory(settings=engram.load_settings(database_url=db_url, embedder="none")) as memory:
            memory.store_many(
                [{"key": f"seed-{i}", "content": sentence(rng), "namespace": NAMESPACES[i % 10]} for i in range(args.entries)]
            )
            lib = {}
            for op in ("store", "search"):
                for c in (1, 16):
                    library_cell(memory, op, c, 50, rng)  # warm-up
                    lib[(op, c)] = library_cell(memory, op, c, args.requests * (1 if c == 1 else 4), rng)
        port = free_port()
        proc = start_server(db_url, port, key, data_dir)
        try:
            srv = {}
            for op in ("store", "search"):
                for c in (1, 16):
                    srv[(op, c)] = asyncio.run(server_cell(
                        f"http://127.0.0.1:{port}", key, op, c, args.requests * (1 if c == 1 else 4), rng))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    rows = []
    for (op, c), s in srv.items():
        lb = lib[(op, c)]
        rows.append({
            "op": op, "concurrency": c,
            "library_p50_ms": lb["p50_ms"], "server_p50_ms": s["p50_ms"],
            "library_p95_ms": lb["p95_ms"], "server_p95_ms": s["p95_ms"],
            "library_rps": lb["rps"], "server_rps": s["rps"],
            "p50_ratio": s["p50_ms"] / lb["p50_ms"], "p50_overhead_ms": s["p50_ms"] - lb["p50_ms"],
            "rps_ratio": lb["rps"] / s["rps"],
            "target_ok": None if c != 1 else s["p50_ms"] <= lb["p50_ms"] + 2.0,
        })
    if args.json:
        print(json.dumps({"entries": args.entries, "requests": args.requests, "rows": rows}, indent=2))
        return
    print(f"engram server vs library, {args.entries} entries, SQLite, loopback HTTP (httpx, keep-alive)\n")
    header = (f"{'op':<7}{'conc':>5}{'lib p50':>10}{'srv p50':>10}{'overhead':>10}{'ratio':>7}"
              f"{'lib req/s':>11}{'srv req/s':>11}{'lib/srv':>8}  target (c=1: srv p50 <= lib p50 + 2 ms)")
    print(header)
    print("-" * len(header))
    for r in rows:
        target = "" if r["target_ok"] is None else ("met" if r["target_ok"] else "MISSED")
        print(f"{r['op']:<7}{r['concurrency']:>5}{r['library_p50_ms']:>9.3f}m{r['server_p50_ms']:>9.3f}m"
              f"{r['p50_overhead_ms']:>+9.3f}m{r['p50_ratio']:>6.1f}x{r['library_rps']:>11.0f}{r['server_rps']:>11.0f}"
              f"{r['rps_ratio']:>7.1f}x  {target}")
    print("\n(ms columns: milliseconds; ratio: server p50 / library p50; lib/srv: library req/s / server req/s)")


if __name__ == "__main__":
    main()
