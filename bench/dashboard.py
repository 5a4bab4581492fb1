"""Dashboard benchmark: server time of the entries page over a 100k-entry namespace, and every page's weight.

    .venv/bin/python bench/dashboard.py            # 100,000 entries, 30 requests per page
    .venv/bin/python bench/dashboard.py --quick    # 10,000 entries, 10 requests (seconds)
    .venv/bin/python bench/dashboard.py --json     # machine-readable results

One SQLite store in a temporary directory, preloaded through the library (one
namespace of N entries with metadata, plus a small one). The app runs in process
under Starlette's TestClient, signed in through the sign-in form like a browser;
"server time" is the time of one request through the whole ASGI app (routing,
session check, the facade, rendering), without a network hop. Pages are
rendered for real (no cache): each request lists, counts and renders again.

Targets (issue 13): every page, the entries pages of a 100k-entry namespace
included, under 300 ms server time (median); every page under 200 KB transferred.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from engram import load_settings
from engram.server.app import create_app
from engram.server.tenancy import Tenancy


def preload(tenancy: Tenancy, n: int) -> str:
    """N entries in namespace ``big`` of the default project; returns the session id of a small transcript."""
    memory = tenancy.memory(tenancy.control.project("default").id)
    batch = 5_000
    for start in range(0, n, batch):
        memory.store_many(
            [{"key": f"doc-{i:07d}", "content": f"entry {i}: the quick brown fox {i % 97} jumps over lazy dogs",
              "metadata": {"topic": f"t{i % 13}", "n": i}} for i in range(start, min(start + batch, n))],
            namespace="big",
        )
    memory.store("small-1", "a small namespace", namespace="small")
    session = memory.session_start({"title": "bench"})
    for i in range(50):
        memory.add_message(session.id, "user" if i % 2 == 0 else "assistant", f"message {i} about foxes")
    return session.id


def timed(client: TestClient, path: str, runs: int) -> tuple[float, int]:
    """(median milliseconds, bytes) of GET ``path``; the first request warms up and is not counted."""
    first = client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:300])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return statistics.median(times), len(first.content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="10,000 entries, 10 runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.runs = 10_000, 10

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url=f"sqlite:///{Path(tmp) / 'engram.db'}", embedder="none")
        tenancy = Tenancy(settings)
        admin = tenancy.control.bootstrap()
        load_start = time.perf_counter()
        session = preload(tenancy, args.entries)
        load_s = time.perf_counter() - load_start
        app = create_app(tenancy=tenancy)
        with TestClient(app) as client:
            form = client.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
            assert client.post("/login", data={"csrf": csrf, "api_key": admin.key}).status_code == 200
            pages = {
                "entries (newest first, page 1)": "/entries?ns=big",
                "entries (page 100)": "/entries?ns=big&page=100",
                "entries (oldest first)": "/entries?ns=big&order=old",
                "entries (100 per page)": "/entries?ns=big&size=100",
                "overview": "/",
                "namespaces": "/namespaces",
                "search": "/search?q=fox&mode=fts&ns=big",
                "search (messages)": "/search?q=foxes&mode=fts&scope=messages",
                "sessions": "/sessions",
                "session transcript": f"/session?id={session}",
                "tasks": "/tasks",
                "variables": "/variables",
                "keys": "/admin/keys",
                "log": "/admin/log",
                "projects": "/admin/projects",
                "users": "/admin/users",
                "stylesheet": "/static/app.css",
            }
            results = {name: timed(client, path, args.runs) for name, path in pages.items()}
        tenancy.close()

    if args.json:
        print(json.dumps({"entries": args.entries, "runs": args.runs, "load_s": load_s,
                          "pages": {k: {"median_ms": ms, "bytes": size} for k, (ms, size) in results.items()}}, indent=2))
    else:
        print(f"{args.entries:,} entries in one namespace (loaded in {load_s:.1f} s); median of {args.runs} requests")
        print(f"{'page':34} {'median ms':>10} {'bytes':>9}")
        for name, (ms, size) in results.items():
            print(f"{name:34} {ms:10.1f} {size:9,}")
    slowest, slowest_ms = max(((name, ms) for name, (ms, _) in results.items()), key=lambda r: r[1])
    heaviest = max(size for _, size in results.values())
    ok = slowest_ms < 300 and heaviest < 200 * 1024
    print(f"target: every page < 300 ms (slowest: {slowest}, {slowest_ms:.1f}), every page < 200 KB "
          f"({heaviest:,} B): {'met' if ok else 'NOT met'}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
