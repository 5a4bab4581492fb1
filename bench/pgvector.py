"""pgvector HNSW vs engram's in-process hnswlib index, both on PostgreSQL, side by side.

    .venv/bin/python bench/pgvector.py                    # 100k vectors
    .venv/bin/python bench/pgvector.py --sizes 100000 1000000
    .venv/bin/python bench/pgvector.py --reuse            # search again over schemas loaded before

Starts its own PostgreSQL 16 with pgvector (the ``pgserver`` wheel) in
``/tmp/engram-bench-pgvector`` and, for each size, loads the same entries
(LoCoMo turns as content, one namespace) into two schemas of it through
``Memory.store_many`` with precomputed vectors: one with ``pgvector=off``
(vectors searched by the in-process engine, as on a PostgreSQL without the
extension) and one with pgvector (vectors in ``vector(384)`` under an HNSW
index, searched in SQL). It prints, per size and path:

- build: ``store_many`` of every entry with its vector, ``--batch`` a call
  (default: all in one; pgvector then writes the rows and builds its index
  after, see engram.stores.postgres.pgvector_bulk), plus, in-process, the first search of a new
  process (it builds the hnswlib graph from the rows);
- p50/p95 of a namespaced top-10 vector search (``Memory.search``, a
  precomputed query vector), and recall@10 against the exact top 10 (numpy);
- per-process memory: RSS growth of a new process from before it opens the
  store to after its searches (each path measured in a fresh subprocess);
- a sweep of ``hnsw.ef_search`` on the pgvector table (p50, recall), which is
  how engram's beam was chosen;
- hybrid end to end (query embedding with the local ONNX model included) on
  PostgreSQL+pgvector, beside the in-process path, with the round trip of a
  bare ``SELECT 1`` (what fusing in SQL could save per search).

Vectors are real sentence embeddings (bench/vectors.py: LoCoMo turns and
questions through all-MiniLM-L6-v2, extended by paraphrase-style mixing of two
real embeddings), cached in ``/tmp/engram-bench-pgvector-<n>.npy``; queries
are real question embeddings. Never random vectors. The machine is shared:
the load average is printed beside every table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vectors import LOCOMO, real_embeddings, synthetic, texts_of

import engram
from engram.embeddings.local import LocalEmbedder

SERVER_DIR = Path("/tmp/engram-bench-pgvector")
# where a worktree's relative path does not reach
SHARED_LOCOMO = Path("/work/shared/data/locomo/locomo-dev.json")
console = Console()


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def vectors_for(
    n: int, locomo: Path
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(data vectors, query vectors, turns, questions), the data cached in /tmp as .npy."""
    turns, questions = texts_of(locomo)
    cache = Path(f"/tmp/engram-bench-pgvector-{n}.npy")
    qcache = Path("/tmp/engram-bench-pgvector-queries.npy")
    if cache.exists() and qcache.exists():
        return np.load(cache), np.load(qcache), turns, questions
    t_vecs, q_vecs = real_embeddings(LocalEmbedder(), turns, questions)
    # half the questions are data, half are queries
    base = np.vstack([t_vecs, q_vecs[len(q_vecs) // 2 :]])
    matrix = synthetic(base, n)
    np.save(cache, matrix)
    np.save(qcache, q_vecs[: len(q_vecs) // 2])
    return matrix, q_vecs[: len(q_vecs) // 2], turns, questions


def server_uri(shared_buffers: str, pgvector_version: str | None = None) -> str:
    """The bench server's URI, restarted first when its ``shared_buffers`` differs from the one asked for.

    ``pgvector_version``: run a copy of the wheel's PostgreSQL with that pgvector built for this
    CPU (bench/pgvector_build.py), on its own data directory; None: the wheel's own (0.6.2).
    """
    import pgserver

    directory = SERVER_DIR
    if pgvector_version:
        from pgvector_build import native_install, use_install

        use_install(native_install(pgvector_version))
        directory = Path(f"{SERVER_DIR}-{pgvector_version}")
    directory.mkdir(exist_ok=True)
    server = pgserver.get_server(directory, cleanup_mode="stop")
    if server.psql("SHOW shared_buffers").split()[2] != shared_buffers:
        # a server setting: written to postgresql.auto.conf, read at the next start
        server.psql(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        server.cleanup()
        server = pgserver.get_server(directory, cleanup_mode="stop")
    return server.get_uri()


def exact_top10(matrix: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    out = []
    for q in queries:
        scores = matrix @ q
        part = np.argpartition(-scores, 10)[:10]
        out.append(set(part.tolist()))
    return out


def load(url: str, matrix: np.ndarray, turns: list[str], batch: int) -> float:
    """store_many every entry with its vector, ``batch`` a call (0: all in one); returns seconds."""
    # The vectors are MiniLM's: recorded under the local model's name, so hybrid search can embed queries.
    settings = engram.load_settings(database_url=url, embedder="local")
    t = time.perf_counter()
    with engram.Memory(settings=settings) as m:
        batch = batch or len(matrix)
        for start in range(0, len(matrix), batch):
            end = min(len(matrix), start + batch)
            m.store_many(
                [
                    {
                        "key": str(i),
                        "content": f"{turns[i % len(turns)]} ({i})",
                        "embedding": matrix[i],
                    }
                    for i in range(start, end)
                ],
                namespace="big",
            )
            console.print(
                f"  {end:,} / {len(matrix):,} stored ({time.perf_counter() - t:.0f} s)",
                end="\r",
            )
    console.print()
    return time.perf_counter() - t


def stored_entries(uri: str, schema: str) -> int:
    """Entries in a schema a previous run loaded (0 when it is not there)."""
    with psycopg.connect(uri, autocommit=True) as conn:
        table = conn.execute(
            "SELECT to_regclass(%s)", (f"{schema}.engram_entries",)
        ).fetchone()[0]
        if table is None:
            return 0
        return conn.execute(f"SELECT count(*) FROM {schema}.engram_entries").fetchone()[
            0
        ]  # our own name


def measure(url: str, queries_path: str, truth_path: str) -> dict:
    """In a fresh process: first search, p50/p95 over the queries, recall@10, RSS growth."""
    queries = np.load(queries_path)
    truth = [set(t) for t in json.loads(Path(truth_path).read_text())]
    before = rss_mb()
    # As load() recorded them: the local model's vectors (a precomputed query vector is taken as one
    # of them; with no embedder each search would read the recorded model first, a round trip).
    settings = engram.load_settings(database_url=url, embedder="local")
    with engram.Memory(settings=settings) as m:
        t = time.perf_counter()
        m.search("", vector=queries[0], mode="vector", namespace="big", limit=10)
        first = time.perf_counter() - t
        passes = []
        # the first pass reads the index into the server's buffers; the second is a warm server's
        for _ in ("cold", "warm"):
            times, hits = [], []
            for q, want in zip(queries, truth):
                t = time.perf_counter()
                found = m.search("", vector=q, mode="vector", namespace="big", limit=10)
                times.append(time.perf_counter() - t)
                hits.append(len({int(h.entry.key) for h in found.results} & want) / 10)
            times.sort()
            passes.append((times, hits))
        path = m.stats().vector_search
    (cold, _), (times, hits) = passes
    return {
        "path": path,
        "first_s": first,
        "cold_p50_ms": statistics.median(cold) * 1000,
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000,
        "recall": statistics.mean(hits),
        "rss_growth_mb": rss_mb() - before,
    }


def ef_sweep(
    uri: str, schema: str, queries: np.ndarray, truth: list[set[int]]
) -> list[tuple]:
    from engram.stores.postgres.pgvector_schema import VECTOR_TYPE, Embedding, register

    rows = []
    with psycopg.connect(
        uri, autocommit=True, options=f"-c search_path={schema},public"
    ) as conn:
        register(conn, conn.execute(VECTOR_TYPE).fetchone())
        sql = (
            "SELECT e.key FROM (SELECT entry_seq FROM engram_entry_vectors WHERE namespace = 'big'"
            " ORDER BY embedding <=> %s LIMIT 10) n JOIN engram_entries e ON e.seq = n.entry_seq"
        )
        for ef in (40, 64, 100, 128, 200, 400, 600, 800, 1000):
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
            times, hits = [], []
            for q, want in zip(queries, truth):
                t = time.perf_counter()
                keys = [
                    int(r[0]) for r in conn.execute(sql, (Embedding(q),)).fetchall()
                ]
                times.append(time.perf_counter() - t)
                hits.append(len(set(keys) & want) / 10)
            rows.append(
                (
                    str(ef),
                    f"{statistics.median(times) * 1000:.2f}",
                    f"{statistics.mean(hits):.3f}",
                )
            )
    return rows


def hybrid(urls: dict[str, str], questions: list[str], uri: str) -> list[tuple]:
    rows = []
    qs = questions[:150]
    memories = {
        name: engram.Memory(
            settings=engram.load_settings(
                database_url=url, embedder="local", embedding_cache_size=0
            )
        )
        for name, url in urls.items()
    }
    try:
        for m in memories.values():
            m.embed(["warm up the model"])
            # the in-process path builds its graph here
            m.search(qs[0], namespace="big", mode="hybrid")
        times: dict[str, list[float]] = {name: [] for name in memories}
        parts: dict[str, list[float]] = {
            "fts": [],
            "vector": [],
        }  # where pgvector's hybrid time goes
        pgvector = memories.get("pgvector")
        embed_t, trip_t = [], []
        with psycopg.connect(uri, autocommit=True) as conn:
            for q in qs:  # side by side, so all see the same load
                for name, m in memories.items():
                    t = time.perf_counter()
                    m.search(q, namespace="big", mode="hybrid")
                    times[name].append(time.perf_counter() - t)
                if pgvector is not None:
                    for mode, ts in parts.items():
                        t = time.perf_counter()
                        pgvector.search(q, namespace="big", mode=mode)
                        ts.append(time.perf_counter() - t)
                t = time.perf_counter()
                next(iter(memories.values())).embedder.embed([q])
                embed_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                trip_t.append(time.perf_counter() - t)
        for name, ts in times.items():
            rows.append(
                (
                    f"hybrid search p50 ({name})",
                    f"{statistics.median(ts) * 1000:.2f} ms",
                )
            )
        for mode, ts in parts.items():
            if ts:
                rows.append(
                    (
                        f"  {mode} search alone p50 (pgvector store)",
                        f"{statistics.median(ts) * 1000:.2f} ms",
                    )
                )
        rows.append(
            (
                "  one-query embedding p50, measured alongside",
                f"{statistics.median(embed_t) * 1000:.2f} ms",
            )
        )
        rows.append(
            (
                "  one round trip (SELECT 1) p50: what one-statement fusion could save",
                f"{statistics.median(trip_t) * 1000:.3f} ms",
            )
        )
    finally:
        for m in memories.values():
            m.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="entries a store_many call (default 0: all in one call, as an import; pgvector then builds its"
        " index after the rows)",
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=("pgvector", "in-process"),
        default=["pgvector", "in-process"],
        help="which to measure, in this order",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the schemas a previous run loaded (its store_many times are shown)",
    )
    parser.add_argument(
        "--shared-buffers",
        default="4GB",
        help="the bench server's shared_buffers (default 4GB: holds the 1M index, as docs/deploying.md advises;"
        " PostgreSQL's default is 128MB)",
    )
    parser.add_argument(
        "--pgvector-version",
        help="build this pgvector from Debian's source for this CPU (e.g. 0.8.0) and run the bench on it;"
        " default: the pgserver wheel's 0.6.2",
    )
    parser.add_argument(
        "--locomo", type=Path, default=LOCOMO if LOCOMO.exists() else SHARED_LOCOMO
    )
    parser.add_argument(
        "--measure",
        nargs=3,
        metavar=("URL", "QUERIES", "TRUTH"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    uri = server_uri(args.shared_buffers, args.pgvector_version)
    console.print(f"PostgreSQL with pgvector at {uri}; {load_note()}")
    for n in args.sizes:
        matrix, queries, turns, questions = vectors_for(n, args.locomo)
        queries = queries[: args.queries]
        truth = exact_top10(matrix, queries)
        qpath, tpath = (
            f"/tmp/engram-bench-pgvector-q{len(queries)}.npy",
            f"/tmp/engram-bench-pgvector-truth-{n}.json",
        )
        np.save(qpath, queries)
        Path(tpath).write_text(json.dumps([sorted(t) for t in truth]))
        urls, results = {}, {}
        options = {"pgvector": "", "in-process": "&pgvector=off"}
        for name in args.paths:
            option = options[name]
            schema = f"bench_{name.replace('-', '_')}_{n}"
            urls[name] = f"{uri}&schema={schema}{option}"
            built = Path(f"/tmp/engram-bench-pgvector-build-{schema}-{args.pgvector_version or 'wheel'}.json")
            if args.reuse and built.exists() and stored_entries(uri, schema) == n:
                build = json.loads(built.read_text())[
                    "build_s"
                ]  # measured by the run that loaded it
                console.print(
                    f"{n:,} vectors, {name}: reusing the schema loaded before"
                )
            else:
                with psycopg.connect(uri, autocommit=True) as conn:
                    conn.execute(
                        f"DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )  # our own name
                console.print(f"{n:,} vectors, {name}: loading; {load_note()}")
                build = load(urls[name], matrix, turns, args.batch)
                built.write_text(json.dumps({"build_s": build}))
            out = subprocess.run(
                [sys.executable, __file__, "--measure", urls[name], qpath, tpath],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[name] = {
                **json.loads(out.strip().splitlines()[-1]),
                "build_s": build,
            }
            # at once: a 1M run may be stopped before the other path is done
            console.print(f"{n:,} vectors, {name}: {json.dumps(results[name])}; {load_note()}")
        table = Table(
            title=f"top-10 vector search, {n:,} vectors x 384 dims, one namespace, PostgreSQL ({load_note()})"
        )
        for c in (
            "path",
            "store_many (s)",
            "first search (s)",
            "cold p50 (ms)",
            "p50 (ms)",
            "p95 (ms)",
            "recall@10",
            "RSS growth (MB)",
        ):
            table.add_column(c, justify="right")
        for name, r in results.items():
            assert r["path"] == name, r
            table.add_row(
                name,
                f"{r['build_s']:.0f}",
                f"{r['first_s']:.2f}",
                f"{r['cold_p50_ms']:.2f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p95_ms']:.2f}",
                f"{r['recall']:.3f}",
                f"{r['rss_growth_mb']:.0f}",
            )
        console.print(table)
        ip, pv = results.get("in-process"), results.get("pgvector")
        if ip and pv:
            console.print(
                f"pgvector vs in-process: p50 {pv['p50_ms'] / ip['p50_ms']:.1f}x, "
                f"recall {pv['recall'] - ip['recall']:+.3f}, build (store + first search) "
                f"{(pv['build_s'] + pv['first_s']) / (ip['build_s'] + ip['first_s']):.2f}x, "
                f"RSS growth {pv['rss_growth_mb']:.0f} vs {ip['rss_growth_mb']:.0f} MB."
            )
        if pv:
            console.print(
                f"Target at 1M: p50 <= 10 ms, recall@10 >= 0.95 "
                f"({'met' if pv['p50_ms'] <= 10 and pv['recall'] >= 0.95 else 'NOT met'} here at {n:,})"
            )
        sweep = Table(
            title=f"hnsw.ef_search on the pgvector table, {n:,} vectors ({load_note()})"
        )
        for c in ("ef_search", "p50 (ms, bare SQL)", "recall@10"):
            sweep.add_column(c, justify="right")
        for row in ef_sweep(uri, f"bench_pgvector_{n}", queries, truth) if pv else []:
            sweep.add_row(*row)
        console.print(sweep)
        if n == 100_000 and len(urls) == 2:
            table = Table(
                title=f"hybrid search end to end (query embedding included), 100k, PostgreSQL ({load_note()})"
            )
            table.add_column("measure")
            table.add_column("value", justify="right")
            for row in hybrid(urls, questions, uri):
                table.add_row(*row)
            console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
