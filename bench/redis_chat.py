"""Redis conversation benchmark: messages on engram's redis:// store, side by side with raw redis-py.

    .venv/bin/python bench/redis_chat.py            # 1k, 10k and 100k messages
    .venv/bin/python bench/redis_chat.py --quick    # 1k and 10k, fewer samples

Messages are LoCoMo sentences, 20 per session. Measured:

* ``add_message()`` vs the raw writes of the same record (HSET + 3 ZADD + SET of
  the counter, one ``MULTI`` pipeline): what engram's one script adds.
* ``history(limit=50)`` vs the raw reads (``ZREVRANGEBYSCORE ... LIMIT 0 50`` +
  a pipeline of ``HGETALL``).
* ``search_messages()`` (client-side BM25, no raw equivalent) with this
  process's index warm, right after an append (only the new range is read),
  right after a deletion (the id list is re-read) and cold (a new process
  loads every message): the measured limits in docs/backends.md.
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

# This directory holds redis.py: keep it off sys.path so `import redis` finds redis-py.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

_spec = importlib.util.spec_from_file_location("engram_bench_core", _HERE / "core.py")
core = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["engram_bench_core"] = core
_spec.loader.exec_module(core)  # type: ignore[union-attr]

from engram import Memory, load_settings  # noqa: E402
from engram._time import to_iso, utcnow  # noqa: E402
from engram.stores.redis.layout import micros  # noqa: E402

DEFAULT_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PER_SESSION = 20


def open_memory(url: str, prefix: str) -> Memory:
    full = f"{url}?prefix={prefix}"
    return Memory(full, settings=load_settings(database_url=full, embedder="none"))


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for i in range(0, len(keys), 5000):
        client.delete(*keys[i : i + 5000])


def fill(memory: Memory, contents: list[str]) -> list[str]:
    """``contents`` as messages, PER_SESSION per session; returns the session ids."""
    sessions = []
    for i in range(0, len(contents), PER_SESSION):
        s = memory.session_start()
        sessions.append(s.id)
        memory.add_messages(
            [{"role": ("user", "assistant")[j % 2], "content": c} for j, c in enumerate(contents[i : i + PER_SESSION])],
            session_id=s.id,
        )
    return sessions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=DEFAULT_URL, help="Redis database (keys under bench prefixes, deleted after)")
    ap.add_argument("-n", type=int, default=2000, help="timed writes and reads per side")
    ap.add_argument("--queries", type=int, default=60, help="timed searches per size and case")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", type=Path, default=core.DEFAULT_DATA)
    args = ap.parse_args()
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    if args.quick:
        args.n, args.queries = 400, 20
    console = Console()
    corpus = core.Corpus.load(args.data)
    client = redis.Redis.from_url(args.url, decode_responses=True)
    tag = uuid.uuid4().hex[:8]
    clock = time.perf_counter
    rows: list[tuple[str, float, float, int]] = []
    search_rows: list[tuple[str, float, float, float, float, int]] = []

    # -- add_message and history(limit=50) vs raw ---------------------------------------------
    prefix, raw_prefix = f"bench-chat-{tag}", f"bench-chat-raw-{tag}"
    memory = open_memory(args.url, prefix)
    try:
        texts = [it["content"] for it in corpus.items(0, 2 * args.n, seed=11)]
        session = memory.session_start().id
        raw_seq = 0
        eng_add: list[float] = []
        raw_add: list[float] = []
        block = 50

        def eng_block(b: int) -> None:
            for text in texts[b * block : (b + 1) * block]:
                t0 = clock()
                memory.add_message(session, "user", text)
                eng_add.append(clock() - t0)

        def raw_block(b: int) -> None:
            nonlocal raw_seq
            for text in texts[args.n + b * block : args.n + (b + 1) * block]:
                t0 = clock()
                raw_seq += 1
                ident, now = str(uuid.uuid4()), utcnow()
                pipe = client.pipeline(transaction=True)
                pipe.hset(f"{raw_prefix}:msg:{ident}", mapping={
                    "id": ident, "session_id": session, "seq": raw_seq, "role": "user", "content": text,
                    "metadata": "{}", "created_at": to_iso(now),
                })  # fmt: skip
                pipe.zadd(f"{raw_prefix}:msgs", {ident: raw_seq})
                pipe.zadd(f"{raw_prefix}:msgs:session:{session}", {ident: raw_seq})
                pipe.zadd(f"{raw_prefix}:msgs:created", {ident: micros(now)})
                pipe.set(f"{raw_prefix}:msgs:seq", raw_seq)
                pipe.execute()
                raw_add.append(clock() - t0)

        for b in range(args.n // block):
            gc.collect()
            for run in (eng_block, raw_block) if b % 2 == 0 else (raw_block, eng_block):
                run(b)
        name = "add_message() p50, vs a raw MULTI of the same writes"
        rows.append((name, core.pct(eng_add, 0.5), core.pct(raw_add, 0.5), len(eng_add)))

        eng_hist: list[float] = []
        raw_hist: list[float] = []
        index = f"{raw_prefix}:msgs:session:{session}"
        for _ in range(args.n):
            t0 = clock()
            memory.history(session, limit=50)
            t1 = clock()
            ids = client.zrevrangebyscore(index, "+inf", "-inf", start=0, num=50)
            pipe = client.pipeline(transaction=False)
            for ident in reversed(ids):
                pipe.hgetall(f"{raw_prefix}:msg:{ident}")
            [json.loads(h["metadata"]) for h in pipe.execute()]
            t2 = clock()
            eng_hist.append(t1 - t0)
            raw_hist.append(t2 - t1)
        name = "history(limit=50) p50, vs ZREVRANGEBYSCORE + HGETALL pipeline"
        rows.append((name, core.pct(eng_hist, 0.5), core.pct(raw_hist, 0.5), len(eng_hist)))
    finally:
        memory.close()
        drop_prefix(client, prefix)
        drop_prefix(client, raw_prefix)

    # -- client-side message search ------------------------------------------------------------
    for size in sizes:
        prefix = f"bench-chat-search-{tag}-{size}"
        writer = open_memory(args.url, prefix)
        searcher = open_memory(args.url, prefix)
        try:
            docs = corpus.items(0, size, seed=size)
            t0 = clock()
            sessions = fill(writer, [d["content"] for d in docs])
            fill_s = clock() - t0
            queries = [q for q, _ in core.make_queries(docs, args.queries, seed=3)]
            cold: list[float] = []
            for q in queries[: max(3, args.queries // 10)]:
                searcher.backend._message_index = type(searcher.backend._message_index)()  # noqa: SLF001 - cold on purpose
                t0 = clock()
                searcher.search_messages(q)
                cold.append(clock() - t0)
            warm: list[float] = []
            for q in queries:
                t0 = clock()
                searcher.search_messages(q)
                warm.append(clock() - t0)
            after_append: list[float] = []
            for i, q in enumerate(queries):
                writer.add_message(sessions[i % len(sessions)], "user", f"a fresh message {i}")
                t0 = clock()
                searcher.search_messages(q)
                after_append.append(clock() - t0)
            after_delete: list[float] = []
            for i, q in enumerate(queries[: max(3, args.queries // 5)]):
                writer.delete_history(sessions[i])
                t0 = clock()
                searcher.search_messages(q)
                after_delete.append(clock() - t0)
            search_rows.append((
                f"{size:,} messages (filled in {fill_s:.1f} s)", core.pct(warm, 0.5), core.pct(after_append, 0.5),
                core.pct(after_delete, 0.5), core.pct(cold, 0.5), len(warm),
            ))  # fmt: skip
        finally:
            writer.close()
            searcher.close()
            drop_prefix(client, prefix)

    table = Table(title="engram redis:// conversation vs raw redis-py (same server)")
    for col in ("benchmark", "engram", "raw redis-py", "ratio", "n"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for name, eng, base, n in rows:
        table.add_row(name, core.fmt_time(eng), core.fmt_time(base), f"{eng / base:.2f}x", str(n))
    console.print(table)
    t2 = Table(title="redis:// search_messages() p50, client-side BM25 over every message")
    for col in ("store", "cache warm", "after an append", "after a deletion", "cold (new process)", "n"):
        t2.add_column(col, justify="left" if col == "store" else "right")
    for name, *values, n in search_rows:
        t2.add_row(name, *(core.fmt_time(v) for v in values), str(n))
    console.print(t2)
    info = client.info("server")
    console.print(f"Redis {info['redis_version']}, redis-py {redis.__version__}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
