"""Integrations benchmark (issue 14): engram's LangGraph/LangChain adapters vs the peers they replace.

    .venv/bin/python bench/integrations.py            # 2,000 items, 400 ops per engine and operation
    .venv/bin/python bench/integrations.py --quick    # smoke run
    .venv/bin/python bench/integrations.py --json     # the numbers as JSON on stdout

One run, the same data for every engine (LoCoMo dialogue turns from
``--data``), p50 per operation, engines interleaved in blocks of 20 ops so load
from other processes hits all alike:

* store ``put`` (a new key), ``get``, ``search(ns, query=..., limit=10)``:
  ``EngramStore`` on SQLite and PostgreSQL vs LangGraph's ``InMemoryStore``,
  ``SqliteStore`` and ``PostgresStore``. The peers run without a vector index
  here (``SqliteStore`` needs ``enable_load_extension``, which this Python
  lacks; ``PostgresStore`` needs pgvector, which this PostgreSQL lacks), and
  without one LangGraph's stores ignore ``query``: their "search" lists the
  namespace. engram's is a BM25 search of the query.
* saver ``put`` and ``get_tuple`` (latest of a thread): ``EngramSaver`` vs
  ``InMemorySaver``, ``SqliteSaver`` and ``PostgresSaver``; a checkpoint holds
  10 chat messages.
* chat ``add`` (one message) and ``read-50`` (a session of 50 messages):
  ``EngramChatMessageHistory`` vs LangChain's ``SQLChatMessageHistory`` on the
  same two databases (its table as shipped: no index on ``session_id``).

SQLite files are WAL with synchronous=NORMAL for every engine. The target ratio
is to the fastest *persistent* peer on the same database (engram on SQLite vs
the SQLite peers, on PostgreSQL vs the PostgreSQL peers); the ratio to the
fastest persistent peer of all is printed beside it. In-memory peers are shown,
not targets. Targets: <= 1.5x on every operation, < 1.0x on search.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
if not DEFAULT_DATA.exists():
    DEFAULT_DATA = Path("/work/shared/data/locomo/locomo-dev.json")
PG = "postgresql://postgres@127.0.0.1:5432/test"
BLOCK = 20
NAMESPACES = 20
THREADS = 50
SESSIONS = 50


def load_texts(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = [
        t["text"]
        for sample in data
        for key, turns in sample["conversation"].items()
        if key.startswith("session_") and isinstance(turns, list)
        for t in turns
        if t.get("text")
    ]
    if not texts:
        raise SystemExit(f"no dialogue turns in {path}")
    return texts


def interleave(engines: dict[str, Callable[[int], Any]], ops: int) -> dict[str, float]:
    """p50 milliseconds of each engine's op over ``ops`` calls, run in rotating blocks."""
    samples: dict[str, list[int]] = {name: [] for name in engines}
    gc.disable()
    try:
        for start in range(0, ops, BLOCK):
            for name, op in engines.items():
                for i in range(start, min(ops, start + BLOCK)):
                    t0 = time.perf_counter_ns()
                    op(i)
                    samples[name].append(time.perf_counter_ns() - t0)
            gc.collect()
    finally:
        gc.enable()
    return {name: statistics.median(s) / 1e6 for name, s in samples.items()}


def each(
    engines: dict[str, Any], op: Callable[[str, Any, int], Any]
) -> dict[str, Callable[[int], Any]]:
    """``op(name, engine, i)`` bound to each engine: the per-engine callables :func:`interleave` runs."""
    return {
        name: functools.partial(op, name, engine) for name, engine in engines.items()
    }


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards."""
    import psycopg

    schema = f"bench_lg_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def pg_conn(stack: ExitStack, schema: str) -> Any:
    """A connection as LangGraph's Postgres classes want it, closed before its schema is dropped."""
    import psycopg
    from psycopg.rows import dict_row

    conn = psycopg.connect(PG, autocommit=True, prepare_threshold=0, row_factory=dict_row,
                           options=f"-c search_path={schema}")  # fmt: skip
    stack.callback(conn.close)
    return conn


def sqlite_conn(stack: ExitStack, path: Path) -> Any:
    import sqlite3

    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    stack.callback(conn.close)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def engram_memory(stack: ExitStack, url: str) -> Any:
    from engram import Memory
    from engram.config import load_settings

    return stack.enter_context(
        Memory(url, settings=load_settings(database_url=url, embedder="none"))
    )


# -- the three families --------------------------------------------------------------------------------
def bench_store(
    stack: ExitStack, work: Path, texts: list[str], items: int, ops: int
) -> dict[str, dict[str, float]]:
    from langgraph.store.base import PutOp
    from langgraph.store.memory import InMemoryStore
    from langgraph.store.postgres import PostgresStore
    from langgraph.store.sqlite import SqliteStore

    from engram.integrations.langgraph import EngramStore

    schema = stack.enter_context(pg_schema())
    sqlite_store = SqliteStore(sqlite_conn(stack, work / "lg-store.db"))
    sqlite_store.setup()
    pg_store = PostgresStore(pg_conn(stack, schema))
    pg_store.setup()
    stores = {
        "InMemoryStore": InMemoryStore(),
        "SqliteStore": sqlite_store,
        "PostgresStore": pg_store,
        "EngramStore[sqlite]": EngramStore(
            engram_memory(stack, f"sqlite:///{work / 'engram-store.db'}")
        ),
        "EngramStore[postgresql]": EngramStore(
            engram_memory(stack, f"{PG}?schema={schema}_e")
        ),
    }
    ns = [("users", f"u{j}") for j in range(NAMESPACES)]
    puts = [
        PutOp(ns[i % NAMESPACES], f"m{i}", {"text": texts[i % len(texts)], "n": i})
        for i in range(items)
    ]
    for store in stores.values():
        for at in range(0, items, 500):
            store.batch(puts[at : at + 500])
    words = [w for t in texts[:items] for w in re.findall(r"[a-z]{5,}", t.lower())]
    rng = random.Random(7)
    queries = [rng.choice(words) for _ in range(ops)]
    gets = [rng.randrange(items) for _ in range(ops)]

    def put(name: str, store: Any, i: int) -> None:
        store.put(ns[i % NAMESPACES], f"new-{name}-{i}", {"text": texts[-i], "n": i})

    def get(name: str, store: Any, i: int) -> None:
        store.get(ns[gets[i] % NAMESPACES], f"m{gets[i]}")

    def search(name: str, store: Any, i: int) -> None:
        store.search(ns[i % NAMESPACES], query=queries[i], limit=10)

    return {
        "store put": interleave(each(stores, put), ops),
        "store get": interleave(each(stores, get), ops),
        "store search": interleave(each(stores, search), ops),
    }


def bench_saver(
    stack: ExitStack, work: Path, texts: list[str], ops: int
) -> dict[str, dict[str, float]]:
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.base.id import uuid6
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from engram.integrations.langgraph import EngramSaver

    schema = stack.enter_context(pg_schema())
    sqlite_saver = SqliteSaver(sqlite_conn(stack, work / "lg-saver.db"))
    sqlite_saver.setup()
    pg_saver = PostgresSaver(pg_conn(stack, schema))
    pg_saver.setup()
    savers = {
        "InMemorySaver": InMemorySaver(),
        "SqliteSaver": sqlite_saver,
        "PostgresSaver": pg_saver,
        "EngramSaver[sqlite]": EngramSaver(
            engram_memory(stack, f"sqlite:///{work / 'engram-saver.db'}")
        ),
        "EngramSaver[postgresql]": EngramSaver(
            engram_memory(stack, f"{PG}?schema={schema}_e")
        ),
    }
    heads: dict[tuple[str, str], str | None] = {}

    def put(name: str, saver: Any, i: int) -> None:
        thread = f"t{i % THREADS}"
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6(clock_seq=i))
        messages = [
            (HumanMessage if k % 2 == 0 else AIMessage)(texts[(i + k) % len(texts)])
            for k in range(10)
        ]
        checkpoint["channel_values"] = {"messages": messages}
        checkpoint["channel_versions"] = {"messages": i + 1}
        config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        if heads.get((name, thread)):
            config["configurable"]["checkpoint_id"] = heads[(name, thread)]
        stored = saver.put(
            config,
            checkpoint,
            {"source": "loop", "step": i, "parents": {}},
            {"messages": i + 1},
        )
        heads[(name, thread)] = stored["configurable"]["checkpoint_id"]

    def get_tuple(name: str, saver: Any, i: int) -> None:
        saver.get_tuple(
            {"configurable": {"thread_id": f"t{i % THREADS}", "checkpoint_ns": ""}}
        )

    return {
        "saver put": interleave(each(savers, put), ops),
        "saver get_tuple": interleave(each(savers, get_tuple), ops),
    }


def bench_chat(
    stack: ExitStack, work: Path, texts: list[str], ops: int
) -> dict[str, dict[str, float]]:
    warnings.filterwarnings("ignore")
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage
    from sqlalchemy import create_engine, event

    from engram.integrations.langchain import EngramChatMessageHistory

    schema = stack.enter_context(pg_schema())
    sqlite_engine = create_engine(f"sqlite:///{work / 'lc-chat.db'}")

    @event.listens_for(sqlite_engine, "connect")
    def _pragmas(conn: Any, _record: Any) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")

    pg_engine = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"),
                              connect_args={"options": f"-c search_path={schema}"})  # fmt: skip
    stack.callback(pg_engine.dispose)
    stack.callback(sqlite_engine.dispose)
    sqlite_memory = engram_memory(stack, f"sqlite:///{work / 'engram-chat.db'}")
    pg_memory = engram_memory(stack, f"{PG}?schema={schema}_e")
    makers: dict[str, Callable[[str], Any]] = {
        "SQLChatMessageHistory[sqlite]": lambda s: SQLChatMessageHistory(
            s, connection=sqlite_engine
        ),
        "SQLChatMessageHistory[postgresql]": lambda s: SQLChatMessageHistory(
            s, connection=pg_engine
        ),
        "EngramChatMessageHistory[sqlite]": lambda s: EngramChatMessageHistory(
            s, sqlite_memory
        ),
        "EngramChatMessageHistory[postgresql]": lambda s: EngramChatMessageHistory(
            s, pg_memory
        ),
    }
    histories = {n: {s: make(s) for s in [*(f"a{j}" for j in range(SESSIONS)), *(f"r{j}" for j in range(SESSIONS))]}
                 for n, make in makers.items()}  # fmt: skip
    fifty = [
        (HumanMessage if k % 2 == 0 else AIMessage)(texts[k % len(texts)])
        for k in range(50)
    ]
    for by_session in histories.values():
        for j in range(SESSIONS):
            by_session[f"r{j}"].add_messages(fifty)

    def add(name: str, by_session: Any, i: int) -> None:
        by_session[f"a{i % SESSIONS}"].add_messages(
            [HumanMessage(texts[i % len(texts)])]
        )

    def read(name: str, by_session: Any, i: int) -> None:
        assert len(by_session[f"r{i % SESSIONS}"].messages) == 50

    return {
        "chat add": interleave(each(histories, add), ops),
        "chat read-50": interleave(each(histories, read), ops),
    }


# -- the table ---------------------------------------------------------------------------------------------
IN_PROCESS = {"InMemoryStore", "InMemorySaver"}


def _database(engine: str) -> str:
    """Which database an engine runs on: sqlite or postgresql (from its name)."""
    return "postgresql" if "postgres" in engine.lower() else "sqlite"


def rows(results: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One row per (operation, engine): p50; for engram, the ratios to the fastest persistent
    peer on the same database (the target) and to the fastest persistent peer of all."""
    out = []
    for op, by_engine in results.items():
        peers = {
            n: v
            for n, v in by_engine.items()
            if not n.startswith("Engram") and n not in IN_PROCESS
        }
        fastest = min(peers, key=peers.__getitem__)
        target = 1.0 if op.endswith("search") else 1.5
        for engine, p50 in by_engine.items():
            row: dict[str, Any] = {
                "operation": op,
                "engine": engine,
                "p50_ms": round(p50, 4),
            }
            if engine.startswith("Engram"):
                same = {
                    n: v for n, v in peers.items() if _database(n) == _database(engine)
                }
                peer = min(same, key=same.__getitem__)
                ratio = p50 / same[peer]
                row.update(vs=peer, ratio=round(ratio, 3), target=target, met=ratio <= target,
                           vs_fastest=fastest, ratio_fastest=round(p50 / peers[fastest], 3))  # fmt: skip
            out.append(row)
    return out


def print_table(table: list[dict[str, Any]]) -> None:
    print(
        f"{'operation':<16} {'engine':<37} {'p50 ms':>8}  {'ratio':>6} {'vs (same database)':<34}"
        f" {'target':<16} {'vs fastest persistent peer'}"
    )
    for r in table:
        if "ratio" not in r:
            print(f"{r['operation']:<16} {r['engine']:<37} {r['p50_ms']:>8.3f}")
            continue
        verdict = f"<= {r['target']}x {'met' if r['met'] else 'MISSED'}"
        print(
            f"{r['operation']:<16} {r['engine']:<37} {r['p50_ms']:>8.3f}  {r['ratio']:>5.2f}x {r['vs']:<34}"
            f" {verdict:<16} {r['ratio_fastest']:.2f}x {r['vs_fastest']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="LoCoMo JSON (dialogue turns as texts)",
    )
    parser.add_argument(
        "--items", type=int, default=2000, help="items preloaded into each store"
    )
    parser.add_argument(
        "--ops", type=int, default=400, help="timed ops per engine and operation"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run (200 items, 40 ops)"
    )
    parser.add_argument(
        "--only",
        choices=["store", "saver", "chat"],
        action="append",
        help="one family (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    items, ops = (200, 40) if args.quick else (args.items, args.ops)
    texts = load_texts(args.data)
    families = args.only or ["store", "saver", "chat"]
    work = Path(tempfile.mkdtemp(prefix="engram-bench-lg-"))
    results: dict[str, dict[str, float]] = {}
    try:
        with ExitStack() as stack:
            if "store" in families:
                print("store ...", file=sys.stderr)
                results |= bench_store(stack, work, texts, items, ops)
            if "saver" in families:
                print("saver ...", file=sys.stderr)
                results |= bench_saver(stack, work, texts, ops)
            if "chat" in families:
                print("chat ...", file=sys.stderr)
                results |= bench_chat(stack, work, texts, ops)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = rows(results)
    if args.json:
        print(json.dumps(table, indent=1))
    else:
        print_table(table)
    return 1 if args.strict and not all(r.get("met", True) for r in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())
