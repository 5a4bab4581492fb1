"""Core benchmark: engram's SQLite store against raw sqlite3, side by side.

    .venv/bin/python bench/core.py            # full run (100k and 1M entries)
    .venv/bin/python bench/core.py --quick    # small smoke run (seconds)
    .venv/bin/python bench/core.py --json     # machine-readable results

Every number in one run is measured on the same machine, at the same time and
on the same data; engram and the baseline are interleaved in small blocks so
that load from other processes hits both sides alike. The baseline is plain
``sqlite3`` on a database with engram's schema and pragmas (WAL,
synchronous=NORMAL):

* ``store()`` of one entry  vs  BEGIN IMMEDIATE; INSERT the same row (its FTS
  row is written by the schema's trigger); COMMIT.  Target: p50 <= 2.5x raw.
* ``store_many()`` of N entries  vs  BEGIN IMMEDIATE; executemany(INSERT); COMMIT
  into a fresh database of the same schema.  Target: <= 1.5x raw.  And vs the
  raw fast path: the same without the FTS insert trigger, then every FTS row
  with one INSERT ... SELECT (issue 15).  Target: <= 1.5x.
* ``engram import`` of an export of N entries  vs  reading the file, json.loads
  of each line and the raw fast path; with and without the CLI's progress bar
  (its record count included).  Targets: <= 1.5x raw; the bar <= 1.02x.
* ``search()`` over 100k and 1M entries in 100 namespaces, namespaced 1-2 word
  queries drawn from the entries' words  vs  the very SQL statements the store
  issues for each query (recorded on a warm-up pass: FTS5 MATCH with the
  namespace token inside it), run on a plain sqlite3 connection to the same
  file.  Target: p50 <= 1.5x raw, and <= 5 ms p50 at 1M.

The notes give the CPU time of the calling thread for the same statistic:
on a machine busy with other work, wall-clock times (and so the absolute
target) are inflated, while ratios of interleaved calls hold.

Entry texts are sentences of the LoCoMo dialogue turns (read at run time from
``--data``, never copied into the repository), recombined at random to reach
the sizes asked for.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
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
from engram.config import Settings, load_settings
from engram.stores.sqlite.schema import MIGRATIONS
from engram.stores.sqlite.store import namespace_token

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
DEFAULT_WORKDIR = REPO / "bench" / ".data"
NAMESPACES = [f"agent-{i:02d}" for i in range(100)]
LOAD_BATCH = 10_000

# The raw baseline's row insert: the same columns engram writes; the schema's
# trigger adds the FTS row inside the same transaction.
RAW_INSERT = (
    "INSERT INTO entries (id, namespace, key, content, metadata, created_at, updated_at, expires_at, ns)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# The raw fast path of a bulk load (issue 15): rows with executemany into the
# table without the insert trigger, then every FTS row with one INSERT ... SELECT.
RAW_INDEX_ALL = "INSERT INTO entries_fts (rowid, ns, key, content) SELECT rowid, ns, key, content FROM entries"

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before being
    below between both but by can could did didn do does doesn doing don down during each else even ever
    few for from further get got had has have having he her here hers herself him himself his how however
    i if in into is isn it its itself just let like ll me might more most much must my myself no nor not
    now of off oh on once one only or other our ours ourselves out over own really re same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up us ve very was wasn way we well were what when where which while who whom why will
    with would yeah yes yet you your yours yourself yourselves thanks thank hey hi wow cool glad sure
    definitely totally going things thing lot lots always something anything everything
    """.split()
)
_WORD = re.compile(r"[a-z]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


# -- data ----------------------------------------------------------------------------------------
@dataclass
class Corpus:
    """Sentences of the LoCoMo turns, with who said them."""

    sentences: list[tuple[str, str, int]]  # (speaker, sentence, session number)

    @classmethod
    def load(cls, path: Path) -> "Corpus":
        data = json.loads(path.read_text(encoding="utf-8"))
        sentences: list[tuple[str, str, int]] = []
        for sample in data:
            conversation = sample["conversation"]
            for name, turns in conversation.items():
                if not (name.startswith("session_") and isinstance(turns, list)):
                    continue
                session = int(name.split("_")[1])
                for turn in turns:
                    for sentence in _SENTENCE.split(turn.get("text", "").strip()):
                        if len(sentence) >= 8:
                            sentences.append((turn["speaker"], sentence, session))
        if not sentences:
            raise SystemExit(f"{path} holds no dialogue turns")
        return cls(sentences)

    def items(self, start: int, stop: int, seed: int) -> list[dict[str, Any]]:
        """Entries ``start..stop-1``: deterministic for a seed, spread over 100 namespaces."""
        rng = random.Random(seed * 1_000_003 + start)
        sentences = self.sentences
        out = []
        for i in range(start, stop):
            speaker, first, session = rng.choice(sentences)
            parts = [first] + [rng.choice(sentences)[1] for _ in range(rng.choice((0, 1, 1, 2)))]
            out.append(
                {
                    "key": f"mem-{i:08d}",
                    "content": f"{speaker}: " + " ".join(parts),
                    "namespace": NAMESPACES[rng.randrange(len(NAMESPACES))],
                    "metadata": {"speaker": speaker, "session": session, "source": "locomo"},
                }
            )
        return out


def raw_rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows engram would write for ``items``, ready for the raw INSERT."""
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return [
        (
            str(uuid.uuid4()),
            it["namespace"],
            it["key"],
            it["content"],
            json.dumps(it["metadata"], ensure_ascii=False, separators=(",", ":")),
            now,
            now,
            None,
            namespace_token(it["namespace"]),
        )
        for it in items
    ]


def make_queries(sample: list[dict[str, Any]], count: int, seed: int) -> list[tuple[str, str]]:
    """(query, namespace): 1-2 content words of a stored entry, searched in its namespace."""
    rng = random.Random(seed)
    queries: list[tuple[str, str]] = []
    while len(queries) < count:
        item = rng.choice(sample)
        words = [w for w in _WORD.findall(item["content"].lower()) if len(w) > 2 and w not in STOPWORDS]
        words = list(dict.fromkeys(words))
        if not words:
            continue
        n = 1 if len(words) == 1 or rng.random() < 0.5 else 2
        queries.append((" ".join(rng.sample(words, n)), item["namespace"]))
    return queries


def open_memory(path: Path) -> Memory:
    """engram on ``path``, full-text only: no embedder, so no time goes to embeddings."""
    url = f"sqlite:///{path}"
    extra = {"embedder": "none"} if "embedder" in Settings.model_fields else {}
    return Memory(url, settings=load_settings(database_url=url, **extra))


# -- raw baseline --------------------------------------------------------------------------------
def raw_connect(path: Path, *, create: bool, fast: bool = False) -> sqlite3.Connection:
    """A plain sqlite3 connection with engram's pragmas (and schema when ``create``;
    ``fast``: without the FTS insert trigger, for the raw fast path of bulk loads)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    if create:
        conn.executescript("BEGIN;" + "".join(MIGRATIONS) + "COMMIT;")
        if fast:
            conn.execute("DROP TRIGGER entries_fts_insert")
    return conn


def raw_fast_load(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """The raw fast path: one transaction, executemany into the table, then the FTS rows at once."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(RAW_INSERT, rows)
    conn.execute(RAW_INDEX_ALL)
    conn.execute("COMMIT")


# -- measuring -----------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Timings:
    """Wall-clock and CPU (this thread) seconds of each timed call."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)


@dataclass
class Row:
    benchmark: str
    engram: float  # seconds, wall clock
    baseline: float  # seconds, wall clock
    target_ratio: float | None = None
    target_abs: float | None = None  # seconds, for engram
    note: str = ""
    samples: int = 0
    engram_cpu: float | None = None  # the same statistic in CPU seconds of the calling thread
    baseline_cpu: float | None = None

    @classmethod
    def of(cls, benchmark: str, eng: Timings, raw: Timings, q: float, **kw: Any) -> "Row":
        """Row of the q-quantile of both sides (wall clock, and CPU in the notes)."""
        row = cls(benchmark, pct(eng.wall, q), pct(raw.wall, q), samples=len(eng.wall), **kw)
        row.engram_cpu, row.baseline_cpu = pct(eng.cpu, q), pct(raw.cpu, q)
        cpu = f"cpu {fmt_time(row.engram_cpu)} vs {fmt_time(row.baseline_cpu)}"
        row.note = f"{row.note}; {cpu}" if row.note else cpu
        return row

    @property
    def ratio(self) -> float:
        return self.engram / self.baseline if self.baseline else float("inf")

    @property
    def passed(self) -> bool | None:
        """The targets, on wall-clock time."""
        return self._meets(self.engram, self.baseline)

    @property
    def passed_cpu(self) -> bool | None:
        """The same targets on CPU time: what the code costs, whatever else runs."""
        if self.engram_cpu is None or self.baseline_cpu is None:
            return None
        return self._meets(self.engram_cpu, self.baseline_cpu)

    def _meets(self, engram: float, baseline: float) -> bool | None:
        if self.target_ratio is None and self.target_abs is None:
            return None
        ok = True
        if self.target_ratio is not None:
            ok &= engram <= self.target_ratio * baseline
        if self.target_abs is not None:
            ok &= engram <= self.target_abs
        return ok

    @property
    def target(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f"<= {self.target_ratio:g}x")
        if self.target_abs is not None:
            parts.append(f"<= {fmt_time(self.target_abs)}")
        return ", ".join(parts) or "-"

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(ratio=self.ratio, passed=self.passed, passed_cpu=self.passed_cpu, target=self.target)
        return d


def fmt_time(seconds: float) -> str:
    if seconds != seconds:
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


@dataclass
class Bench:
    args: argparse.Namespace
    console: Console
    workdir: Path
    corpus: Corpus
    rows: list[Row] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        self.sample_load()
        self.console.log(message)

    def sample_load(self) -> None:
        """Note the 1-minute load average: other processes inflate wall-clock times."""
        self.info.setdefault("load_average", []).append(round(os.getloadavg()[0], 2))

    def progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )

    # -- store(): one entry per transaction ------------------------------------------------------
    def bench_store_one(self) -> None:
        n, block = self.args.store_n, 100
        items = self.corpus.items(0, n + 200, seed=11)
        # Both sides write the same entries, each into its own database.
        warm, eng_items = items[:200], items[200:]
        raw_warm, raw_timed = raw_rows(warm), raw_rows(eng_items)

        eng_path, raw_path = self.workdir / "store-one-engram.db", self.workdir / "store-one-raw.db"
        memory = open_memory(eng_path)
        raw = raw_connect(raw_path, create=True)
        try:
            for it in warm:
                memory.store(it["key"], it["content"], namespace=it["namespace"], metadata=it["metadata"])
            for row in raw_warm:
                raw.execute("BEGIN IMMEDIATE")
                raw.execute(RAW_INSERT, row)
                raw.execute("COMMIT")

            eng, base = Timings(), Timings()
            clock, cpu = time.perf_counter, time.thread_time
            store = memory.store
            for b in range(0, n, block):

                def run_engram() -> None:
                    for it in eng_items[b : b + block]:
                        t0, c0 = clock(), cpu()
                        store(it["key"], it["content"], namespace=it["namespace"], metadata=it["metadata"])
                        eng.add(clock() - t0, cpu() - c0)

                def run_raw() -> None:
                    execute = raw.execute
                    for row in raw_timed[b : b + block]:
                        t0, c0 = clock(), cpu()
                        execute("BEGIN IMMEDIATE")
                        execute(RAW_INSERT, row)
                        execute("COMMIT")
                        base.add(clock() - t0, cpu() - c0)

                gc.collect()
                for run in (run_engram, run_raw) if (b // block) % 2 == 0 else (run_raw, run_engram):
                    run()
        finally:
            memory.close()
            raw.close()
            remove_db(eng_path)
            remove_db(raw_path)
        self.rows.append(Row.of("store() one entry, p50", eng, base, 0.5, target_ratio=1.5))  # issue 15
        self.rows.append(Row.of("store() one entry, p95", eng, base, 0.95))

    # -- store_many(): N entries in one transaction ----------------------------------------------
    def bench_store_many(self) -> None:
        n, reps = self.args.store_many, self.args.reps
        items = self.corpus.items(0, n, seed=23)
        eng, base, fast = Timings(), Timings(), Timings()
        clock, cpu = time.perf_counter, time.thread_time
        with self.progress() as progress:
            task = progress.add_task(f"store_many({n:,})", total=3 * reps, rate="")
            for rep in range(reps):
                rows = raw_rows(items)  # fresh ids per repetition, outside the clock

                def run_engram() -> None:
                    path = self.workdir / f"store-many-engram-{rep}.db"
                    memory = open_memory(path)
                    try:
                        gc.collect()
                        t0, c0 = clock(), cpu()
                        stored = memory.store_many(items)
                        eng.add(clock() - t0, cpu() - c0)
                        assert stored == n
                    finally:
                        memory.close()
                        remove_db(path)
                    progress.update(task, advance=1, rate=f"engram {fmt_time(eng.wall[-1])}")

                def run_raw() -> None:
                    path = self.workdir / f"store-many-raw-{rep}.db"
                    conn = raw_connect(path, create=True)
                    try:
                        gc.collect()
                        t0, c0 = clock(), cpu()
                        conn.execute("BEGIN IMMEDIATE")
                        conn.executemany(RAW_INSERT, rows)
                        conn.execute("COMMIT")
                        base.add(clock() - t0, cpu() - c0)
                    finally:
                        conn.close()
                        remove_db(path)
                    progress.update(task, advance=1, rate=f"raw {fmt_time(base.wall[-1])}")

                def run_fast() -> None:
                    path = self.workdir / f"store-many-fast-{rep}.db"
                    conn = raw_connect(path, create=True, fast=True)
                    try:
                        gc.collect()
                        t0, c0 = clock(), cpu()
                        raw_fast_load(conn, rows)
                        fast.add(clock() - t0, cpu() - c0)
                    finally:
                        conn.close()
                        remove_db(path)
                    progress.update(task, advance=1, rate=f"raw fast {fmt_time(fast.wall[-1])}")

                sides = (run_engram, run_raw, run_fast)
                for run in sides if rep % 2 == 0 else sides[::-1]:
                    run()
        self.rows.append(
            Row.of(
                f"store_many() {human(n)} entries",
                eng,
                base,
                0.5,
                target_ratio=1.5,
                note=f"median of {reps}; {n / pct(eng.wall, 0.5):,.0f} entries/s",
            )
        )
        self.rows.append(
            Row.of(
                "  vs the raw fast path (FTS rows in one INSERT ... SELECT)",
                eng,
                fast,
                0.5,
                target_ratio=1.5,
                note=f"median of {reps}",
            )
        )

    # -- engram import: an export of N entries into a fresh database -----------------------------
    def bench_import(self) -> None:
        from engram.cli._output import progress_bar
        from engram.transfer import count_records

        n, reps = self.args.store_many, self.args.reps
        export = self.workdir / "import-source.jsonl"
        source_path = self.workdir / "import-source.db"
        with open_memory(source_path) as source:
            source.store_many(self.corpus.items(0, n, seed=29))
            source.export(export)
        remove_db(source_path)
        eng, with_bar, base = Timings(), Timings(), Timings()
        clock, cpu = time.perf_counter, time.thread_time

        def run_engram(bar: bool, rep: int) -> None:
            path = self.workdir / f"import-engram-{int(bar)}-{rep}.db"
            memory = open_memory(path)
            try:
                gc.collect()
                t0, c0 = clock(), cpu()
                if bar:  # what `engram import` does: count the records, then a bar on stderr
                    with progress_bar("importing", count_records(export)) as advance:
                        counts = memory.import_(export, progress=advance)
                    with_bar.add(clock() - t0, cpu() - c0)
                else:
                    counts = memory.import_(export)
                    eng.add(clock() - t0, cpu() - c0)
                assert counts["entry"] == n
            finally:
                memory.close()
                remove_db(path)

        def run_raw(rep: int) -> None:
            # Read and decode each line, then the raw fast path: what any importer must do.
            path = self.workdir / f"import-raw-{rep}.db"
            conn = raw_connect(path, create=True, fast=True)
            dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
            try:
                gc.collect()
                t0, c0 = clock(), cpu()
                rows = []
                with export.open(encoding="utf-8") as f:
                    next(f)
                    for line in f:
                        d = json.loads(line)["data"]
                        ns = d["namespace"]
                        rows.append(
                            (d["id"], ns, d["key"], d["content"], dumps(d["metadata"]), d["created_at"],
                             d["updated_at"], d["expires_at"], namespace_token(ns))
                        )  # fmt: skip
                raw_fast_load(conn, rows)
                base.add(clock() - t0, cpu() - c0)
            finally:
                conn.close()
                remove_db(path)

        for rep in range(reps):
            sides = [lambda: run_engram(False, rep), lambda: run_raw(rep), lambda: run_engram(True, rep)]
            for run in sides if rep % 2 == 0 else sides[::-1]:
                run()
            self.log(f"import rep {rep + 1}/{reps}: engram {fmt_time(eng.wall[-1])}, with bar "
                     f"{fmt_time(with_bar.wall[-1])}, raw {fmt_time(base.wall[-1])}")  # fmt: skip
        export.unlink()
        note = f"median of {reps}; read + decode + raw fast path"
        self.rows.append(Row.of(f"engram import of {human(n)} entries", eng, base, 0.5, target_ratio=1.5, note=note))
        bar = Row.of("  with the progress bar vs without", with_bar, eng, 0.5, target_ratio=1.02, note=f"median of {reps}")
        self.rows.append(bar)

    # -- search(): one database grown in batches, measured at each size ---------------------------
    def bench_search(self) -> None:
        sizes = sorted(self.args.sizes)
        path = self.workdir / "search.db"
        memory = open_memory(path)
        raw = raw_connect(path, create=False)
        sample: list[dict[str, Any]] = []
        sample_rng = random.Random(5)
        loaded = 0
        load_seconds = 0.0
        try:
            with self.progress() as progress:
                task = progress.add_task("loading search.db", total=sizes[-1], rate="")
                for size in sizes:
                    while loaded < size:
                        batch = self.corpus.items(loaded, min(loaded + LOAD_BATCH, size), seed=37)
                        sample.extend(sample_rng.sample(batch, max(1, len(batch) // 50)))
                        t0 = time.perf_counter()
                        memory.store_many(batch)
                        load_seconds += time.perf_counter() - t0
                        loaded += len(batch)
                        progress.update(
                            task, completed=loaded, rate=f"{loaded / load_seconds:,.0f} entries/s"
                        )
                    self.search_at(memory, raw, size, sample, progress)
            self.info["search_load_entries_per_s"] = round(loaded / load_seconds)
            self.info["search_db_bytes"] = sum(
                p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file()
            )
        finally:
            memory.close()
            raw.close()
            if not self.args.keep:
                remove_db(path)

    def search_at(
        self, memory: Memory, raw: sqlite3.Connection, size: int, sample: list[dict[str, Any]], progress: Progress
    ) -> None:
        queries = make_queries(sample, self.args.queries, seed=size)
        search = memory.search
        clock = time.perf_counter

        # The raw side runs exactly the full-text statements the store issues
        # (its FTS5 MATCH; any other statement is engram's overhead): record
        # them on a first pass, which also warms the page cache and both
        # statement caches, and check that both sides return the same entries.
        backend = memory.backend
        issued: list[tuple[str, list[Any]]] = []
        read = backend._read

        def recording_read(action: str, sql: str, params: Any = ()) -> Any:
            if " MATCH " in sql:
                issued.append((sql, list(params)))
            return read(action, sql, params)

        statements: list[list[tuple[str, list[Any]]]] = []
        hits = []
        backend._read = recording_read
        try:
            for q, ns in queries:
                issued.clear()
                got = [h.entry.id for h in search(q, namespace=ns, limit=10).results]
                if not issued:
                    raise SystemExit("the store issued no MATCH statement for a search: cannot build the baseline")
                statements.append(list(issued))
                rows = [raw.execute(sql, params).fetchall() for sql, params in issued][-1]
                returned = set(got)
                if [r[0] for r in rows if r[0] in returned] != got:
                    raise SystemExit(f"engram and raw disagree on {q!r} in {ns}")
                hits.append(len(got))
        finally:
            del backend._read
        multi = sum(len(s) > 1 for s in statements)
        if multi:
            self.log(f"{multi} searches issued more than one MATCH statement; the baseline runs them all")

        eng, base = Timings(), Timings()
        cpu = time.thread_time
        task = progress.add_task(f"search @ {human(size)}", total=len(queries), rate="")
        gc.collect()
        for i, ((q, ns), stmts) in enumerate(zip(queries, statements)):
            # Alternate which side goes first, so neither always finds the cache the other warmed.
            for side in (0, 1) if i % 2 == 0 else (1, 0):
                if side == 0:
                    t0, c0 = clock(), cpu()
                    search(q, namespace=ns, limit=10)
                    eng.add(clock() - t0, cpu() - c0)
                else:
                    t0, c0 = clock(), cpu()
                    for sql, params in stmts:
                        raw.execute(sql, params).fetchall()
                    base.add(clock() - t0, cpu() - c0)
            progress.update(task, advance=1)
        self.sample_load()
        note = f"{len(queries)} queries, {statistics.mean(hits):.1f} hits avg"
        self.rows.append(
            Row.of(
                f"search() @ {human(size)}, p50",
                eng,
                base,
                0.5,
                # The targets are set for 100k and 1M entries; below, the query
                # is so cheap that they do not apply (a --quick run only smoke-tests).
                target_ratio=1.5 if size >= 100_000 else None,
                target_abs=0.005 if size >= 1_000_000 else None,
                note=note,
            )
        )
        self.rows.append(Row.of(f"search() @ {human(size)}, p95", eng, base, 0.95))


def human(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            pass


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        mult = 1_000_000 if part.endswith("m") else 1000 if part.endswith("k") else 1
        sizes.append(int(float(part.rstrip("mk")) * mult))
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("sizes must be numbers >= 100, e.g. 100k,1M")
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LoCoMo JSON file (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="small smoke run: search at 2k,20k; store_many 5k")
    ap.add_argument("--sizes", type=parse_sizes, help="search database sizes (default 100k,1M)")
    ap.add_argument("--store-many", type=int, help="entries per store_many() run (default 100k)")
    ap.add_argument("--store-n", type=int, help="single store() calls per side (default 2000)")
    ap.add_argument("--queries", type=int, help="search queries per size (default 400)")
    ap.add_argument("--reps", type=int, help="store_many() repetitions per side (default 5)")
    ap.add_argument(
        "--only", choices=("store", "store_many", "import", "search"), action="append", help="run only these"
    )
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where databases go (default: %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the search database afterwards")
    ap.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    quick = args.quick
    args.sizes = args.sizes or ([2_000, 20_000] if quick else [100_000, 1_000_000])
    args.store_many = args.store_many or (5_000 if quick else 100_000)
    args.store_n = args.store_n or (300 if quick else 2_000)
    args.queries = args.queries or (100 if quick else 400)
    args.reps = args.reps or (1 if quick else 5)
    only = set(args.only or ("store", "store_many", "import", "search"))

    console = Console(stderr=True)
    if not args.data.is_file():
        console.print(f"[red]LoCoMo data not found at {args.data}; pass --data PATH[/red]")
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="core-", dir=args.workdir))
    bench = Bench(args, console, workdir, Corpus.load(args.data))
    bench.info.update(
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        cpus=os.cpu_count(),
        platform=platform.platform(),
        sentences=len(bench.corpus.sentences),
        data=str(args.data),
        workdir=str(workdir),
    )
    started = time.perf_counter()
    try:
        if "store" in only:
            bench.log(f"store(): {args.store_n:,} single-entry transactions per side")
            bench.bench_store_one()
        if "store_many" in only:
            bench.log(f"store_many(): {args.store_many:,} entries x {args.reps} per side")
            bench.bench_store_many()
        if "import" in only:
            bench.log(f"engram import: {args.store_many:,} entries x {args.reps} per side")
            bench.bench_import()
        if "search" in only:
            bench.log(f"search(): sizes {', '.join(human(s) for s in args.sizes)}, {args.queries} queries each")
            bench.bench_search()
    finally:
        if args.keep:
            console.log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    bench.info["seconds"] = round(time.perf_counter() - started, 1)
    bench.sample_load()
    loads = bench.info["load_average"]

    if args.json:
        print(json.dumps({"info": bench.info, "results": [r.as_json() for r in bench.rows]}, indent=2))
    else:
        out = Console(width=None if sys.stdout.isatty() else 150)
        table = Table(title="engram core benchmark (engram vs raw sqlite3, same run, same data)")
        for col, justify in (
            ("benchmark", "left"),
            ("engram p50", "right"),
            ("baseline p50", "right"),
            ("ratio", "right"),
            ("target", "left"),
            ("pass/fail", "center"),
            ("notes", "left"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in bench.rows:
            verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "-"}[r.passed]
            if r.passed is False and r.passed_cpu:
                verdict += " (cpu: pass)"
            table.add_row(
                r.benchmark, fmt_time(r.engram), fmt_time(r.baseline), f"{r.ratio:.2f}x", r.target, verdict, r.note
            )
        out.print(table)
        out.print(
            f"Python {bench.info['python']}, SQLite {bench.info['sqlite']}, {bench.info['cpus']} CPUs; "
            f"{bench.info['sentences']:,} LoCoMo sentences; total {bench.info['seconds']} s"
            + (
                f"; search load {bench.info['search_load_entries_per_s']:,} entries/s"
                if "search_load_entries_per_s" in bench.info
                else ""
            )
        )
        out.print(
            f"1-minute load average during the run: {min(loads):g} to {max(loads):g} on {bench.info['cpus']} CPUs. "
            "Ratios compare calls interleaved in the same run; the notes give CPU time of the calling thread."
        )
        if max(loads) > (os.cpu_count() or 1):
            out.print(
                "[yellow]Other processes competed for the CPUs: wall-clock times (and the absolute target) "
                "are inflated; the CPU times in the notes are closer to an idle machine.[/yellow]"
            )
    failed = [r for r in bench.rows if r.passed is False]
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
