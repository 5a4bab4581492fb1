"""Chat-history benchmark: engram vs LangChain's SQLChatMessageHistory vs raw SQL, one SQLite file.

    .venv/bin/python bench/chat.py                     # 100k sessions x 20 messages (2M messages)
    .venv/bin/python bench/chat.py --sessions 10000    # a smaller store
    .venv/bin/python bench/chat.py --quick             # smoke run (seconds)

Needs ``pip install langchain-community greenlet`` in the virtual environment
(a benchmark dependency only, never one of engram's).

All three live in the same SQLite file (WAL, synchronous=NORMAL for every
connection, LangChain's included, so durability settings are equal) and hold
the same conversations: ``sessions x per-session`` messages whose texts are
LoCoMo dialogue turns (read at run time from ``--data``). Measured, p50 over
``--ops`` operations on random sessions, the engines interleaved in small
blocks so load from other processes hits all alike:

* ``add_message`` — ``Memory.add_message(session, "user", text, user_id=...)``
  vs ``SQLChatMessageHistory.add_message(HumanMessage(text))`` vs raw
  ``BEGIN IMMEDIATE; INSERT`` (the same row into engram's table, its FTS row by
  the schema's trigger; ``COMMIT``) with parameters prepared outside the timer.
  Targets: engram >= 3x faster than LangChain, <= 2x raw.
* ``history(limit=50)`` — ``Memory.history(session, limit=50)`` (Message
  models) vs ``SQLChatMessageHistory.messages`` (LangChain has no limit; a
  session holds ~20 messages, so both return the whole session) vs the raw
  ``SELECT ... WHERE session_id = ? ORDER BY seq DESC LIMIT 50``. LangChain's
  table has no index on ``session_id`` as shipped, so every read scans the
  table; it is measured as shipped (fewer ops) and again with an index added.

Loading uses bulk paths: ``Memory.add_messages`` in batches of 10k, and
``executemany`` of the exact rows LangChain writes into its own table.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from engram import Memory
from engram.stores.sqlite import chat_sql as _sql_chat

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
DEFAULT_WORKDIR = REPO / "bench" / ".data"
LOAD_BATCH = 10_000
BLOCK = 50  # ops per engine before switching to the next (interleaving)

console = Console(stderr=True)


def load_texts(path: Path) -> list[str]:
    """Every dialogue turn of LoCoMo, in order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = []
    for sample in data:
        conv = sample["conversation"]
        for key, turns in conv.items():
            if key.startswith("session_") and isinstance(turns, list):
                texts += [t["text"] for t in turns if t.get("text")]
    if not texts:
        raise SystemExit(f"no dialogue turns in {path}")
    return texts


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console,
    )  # fmt: skip


def p50_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def interleave(engines: dict[str, Callable[[int], None]], ops: dict[str, int]) -> dict[str, list[int]]:
    """Run each engine's op ``ops[name]`` times, in rotating blocks; returns ns per op."""
    samples: dict[str, list[int]] = {name: [] for name in engines}
    done = {name: 0 for name in engines}
    gc.disable()
    try:
        while any(done[n] < ops[n] for n in engines):
            for name, op in engines.items():
                for _ in range(min(BLOCK, ops[name] - done[name])):
                    i = done[name]
                    t0 = time.perf_counter_ns()
                    op(i)
                    samples[name].append(time.perf_counter_ns() - t0)
                    done[name] += 1
            gc.collect()
    finally:
        gc.enable()
    return samples


class LangChain:
    """LangChain's SQLChatMessageHistory on the same file (synchronous=NORMAL like the others)."""

    def __init__(self, path: Path):
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from langchain_community.chat_message_histories import SQLChatMessageHistory
        from langchain_core.messages import HumanMessage, message_to_dict
        from sqlalchemy import create_engine, event

        self.engine = create_engine(f"sqlite:///{path}")

        @event.listens_for(self.engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA busy_timeout = 30000")

        self.History = SQLChatMessageHistory
        self.Human = HumanMessage
        self.to_dict = message_to_dict
        self.History(session_id="setup", connection=self.engine)  # creates message_store

    def history(self, session_id: str) -> Any:
        return self.History(session_id=session_id, connection=self.engine)

    def row(self, session_id: str, text: str) -> tuple[str, str]:
        return session_id, json.dumps(self.to_dict(self.Human(content=text)))


def raw_params(session_id: str, user_id: str, text: str) -> tuple[Any, ...]:
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return (
        None, str(uuid.uuid4()), session_id, "user", text, user_id, None, "{}", None, None, None, now,
        _sql_chat.scope_token(session_id), _sql_chat.scope_token(user_id),
    )  # fmt: skip


RAW_HISTORY = (
    f"SELECT {_sql_chat.MESSAGE_COLUMNS} FROM messages m WHERE m.session_id = ? ORDER BY m.seq DESC LIMIT 50"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--per-session", type=int, default=20)
    parser.add_argument("--ops", type=int, default=2000, help="timed operations per engine and measure")
    parser.add_argument("--scan-ops", type=int, default=20, help="ops for LangChain's history as shipped (full scans)")
    parser.add_argument("--quick", action="store_true", help="1,000 sessions, 300 ops")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--keep", action="store_true", help="keep the database file afterwards")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.ops, args.scan_ops = 1000, 300, 20

    texts = load_texts(args.data)
    rng = random.Random(7)
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"chat-{args.sessions}x{args.per_session}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

    memory = Memory(f"sqlite:///{path}")
    lc = LangChain(path)
    total = args.sessions * args.per_session
    started = time.perf_counter()
    session_ids: list[str] = []
    with progress() as bar:
        task = bar.add_task("sessions", total=args.sessions)
        for _ in range(args.sessions):
            session_ids.append(memory.session_start().id)
            bar.advance(task)
        t_engram = bar.add_task("engram messages (add_messages)", total=total)
        t_lc = bar.add_task("LangChain rows (executemany)", total=total)
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA synchronous = NORMAL")
        batch: list[dict[str, Any]] = []
        lc_rows: list[tuple[str, str]] = []
        k = 0

        def flush() -> None:
            memory.add_messages(batch)
            bar.advance(t_engram, len(batch))
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany("INSERT INTO message_store (session_id, message) VALUES (?, ?)", lc_rows)
            raw.execute("COMMIT")
            bar.advance(t_lc, len(lc_rows))
            batch.clear()
            lc_rows.clear()

        for n, sid in enumerate(session_ids):
            user = f"user-{n % 5000}"
            for j in range(args.per_session):
                text = texts[k % len(texts)]
                k += 1
                role = "user" if j % 2 == 0 else "assistant"
                batch.append({"session_id": sid, "role": role, "content": text, "user_id": user if role == "user" else None})
                lc_rows.append(lc.row(sid, text))
            if len(batch) >= LOAD_BATCH:
                flush()
        if batch:
            flush()
    load_s = time.perf_counter() - started
    console.print(f"loaded {args.sessions:,} sessions x {args.per_session} = {total:,} messages per engine in {load_s:.0f} s")

    # -- add_message ------------------------------------------------------------
    ops = args.ops
    targets = [rng.choice(session_ids) for _ in range(ops)]
    words = [texts[rng.randrange(len(texts))] for _ in range(ops)]
    lc_histories = {sid: lc.history(sid) for sid in set(targets)}
    raw_rows = [raw_params(sid, "user-x", w) for sid, w in zip(targets, words)]
    warm_row = raw_params(targets[0], "user-x", words[0])
    raw_insert = _sql_chat.INSERT_MESSAGE

    def engram_add(i: int) -> None:
        memory.add_message(targets[i], "user", words[i], user_id="user-x")

    def langchain_add(i: int) -> None:
        lc_histories[targets[i]].add_message(lc.Human(content=words[i]))

    def raw_add(i: int) -> None:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(raw_insert, raw_rows[i])
        raw.execute("COMMIT")

    # Warm up connections and statement caches (these rows are not timed).
    memory.add_message(targets[0], "user", words[0], user_id="user-x")
    lc_histories[targets[0]].add_message(lc.Human(content=words[0]))
    raw.execute("BEGIN IMMEDIATE")
    raw.execute(raw_insert, warm_row)
    raw.execute("COMMIT")
    add = interleave({"engram": engram_add, "langchain": langchain_add, "raw": raw_add}, {"engram": ops, "langchain": ops, "raw": ops})

    # -- history(limit=50) --------------------------------------------------------
    reads = [rng.choice(session_ids) for _ in range(ops)]
    lc_reads = {sid: lc.history(sid) for sid in set(reads)}

    def engram_history(i: int) -> None:
        memory.history(reads[i], limit=50)

    def langchain_history(i: int) -> None:
        lc_reads[reads[i]].messages  # noqa: B018 - the property runs the query

    def raw_history(i: int) -> None:
        raw.execute(RAW_HISTORY, (reads[i],)).fetchall()

    assert len(memory.history(reads[0], limit=50)) == len(lc_reads[reads[0]].messages) == len(raw.execute(RAW_HISTORY, (reads[0],)).fetchall())
    engram_history(0), raw_history(0)
    hist = interleave(
        {"engram": engram_history, "raw": raw_history, "langchain (as shipped: no index)": langchain_history},
        {"engram": ops, "raw": ops, "langchain (as shipped: no index)": args.scan_ops},
    )
    raw.execute("CREATE INDEX IF NOT EXISTS bench_message_store_session ON message_store (session_id, id)")
    langchain_history(0)
    hist.update(interleave({"langchain (+ index on session_id)": langchain_history}, {"langchain (+ index on session_id)": ops}))

    size_mb = sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()) / 1e6
    results = {
        "sessions": args.sessions,
        "messages_per_engine": total,
        "load_seconds": round(load_s, 1),
        "file_mb": round(size_mb),
        "add_message_p50_us": {k: round(p50_us(v), 1) for k, v in add.items()},
        "history_limit50_p50_us": {k: round(p50_us(v), 1) for k, v in hist.items()},
        "ops": {"add_message": {k: len(v) for k, v in add.items()}, "history": {k: len(v) for k, v in hist.items()}},
    }
    memory.close()
    raw.close()
    lc.engine.dispose()
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    if args.json:
        print(json.dumps(results, indent=2))
    render(results)


def render(r: dict[str, Any]) -> None:
    table = Table(
        title=f"chat history: {r['sessions']:,} sessions, {r['messages_per_engine']:,} messages per engine, "
        f"one SQLite file ({r['file_mb']:,} MB)"
    )
    for col in ("measure", "engine", "p50 (µs)", "engram speed-up", "engram / raw", "target", "met"):
        table.add_column(col, justify="right" if col not in ("measure", "engine", "target") else "left")
    for measure, key in (("add_message", "add_message_p50_us"), ("history(limit=50)", "history_limit50_p50_us")):
        values = r[key]
        engram, raw = values["engram"], values["raw"]
        for engine, p50 in values.items():
            speedup = f"{p50 / engram:.1f}x" if engine.startswith("langchain") else ""
            over_raw = f"{engram / raw:.2f}x" if engine == "engram" else ""
            if engine.startswith("langchain"):
                target, met = ">= 3x faster", p50 / engram >= 3
            elif engine == "engram":
                target, met = "<= 2x raw", engram / raw <= 2
            else:
                target, met = "", None
            table.add_row(
                measure, engine, f"{p50:,.1f}", speedup, over_raw, target,
                "" if met is None else ("[green]yes[/green]" if met else "[red]no[/red]"),
            )  # fmt: skip
    Console().print(table)
    Console().print(f"load (bulk paths, both engines): {r['load_seconds']} s;  ops: {r['ops']}")


if __name__ == "__main__":
    sys.exit(main())
