"""Speed of the local embedder, side by side with sentence-transformers and with the path it replaced.

    .venv/bin/python bench/embeddings.py [--texts 1200] [--queries 200] [--locomo-ab] [--int8-all]

Everything is measured in one run, interleaved, on the same texts (LoCoMo
dialogue turns; questions for one-query latency), so the machine's load hits
every side alike; compare the ratios, not absolute times across runs.

Four sides:

- **product**: ``LocalEmbedder()`` as shipped: the fully fused graph (eager
  attention export), one tokenization per call, batches sorted by token
  count and cut at BATCH_TOKENS padded tokens, run as single-threaded calls
  on one worker per core; one query runs on the caller's thread, unpadded;
- **int8**: ``LocalEmbedder("all-MiniLM-L6-v2-int8")``, the shipped opt-in
  variant with int8 matrix products where they cost least accuracy
  (src/engram/embeddings/quantize.py), each text in its own call;
- **before**: the recipe this replaced, rebuilt here: one session with a
  thread per core on batches of 64 texts sorted by characters, tokenizer
  padding, a single-threaded session for one query, on the previous export
  (SDPA attention) when the cache still holds it;
- **sentence-transformers**: its own ``encode`` (torch, batch 32) on the
  same texts: the reference for vectors and the baseline for speed.

Targets (issue 15, item 2): one query <= 3 ms p50; batched ingest >= 2x the
texts/s of "before"; vectors equal to the reference (cosine >= 0.99, measured
mean and min over >= 1,000 real sentences); embedding overlapped with the
database writes of the previous batch (reindex and import), gain measured.
``--locomo-ab`` runs bench/locomo.py's any@5/10/20 with the int8 model's
vectors and with the fp32 product's (equal to the reference's to ~3e-7,
see the vectors table), in this code state, only the embedder switched;
``--locomo-reference`` adds sentence-transformers' own vectors (slow).
``--int8-all`` measures every matrix product in int8 (not shipped: see
bench/README.md). One-query tables give wall-clock and CPU (process time)
p50: on a loaded machine the CPU figure is what a quiet one would show.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

import engram
from engram.embeddings import QUANTIZED_MODEL, local, normalize

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo-dev.json"
console = Console(stderr=False)


def texts_of(path: Path) -> tuple[list[str], list[str]]:
    data = json.loads(path.read_text())
    turns, questions = [], []
    for s in data:
        for k, v in s["conversation"].items():
            if k.startswith("session_") and isinstance(v, list):
                turns += [f"{t['speaker']}: {t['text']}" for t in v]
        questions += [q["question"] for q in s["qa"]]
    return turns, questions


class Before:
    """The embedding recipe this change replaced (kept here only to measure against)."""

    name, dimensions = local.LOCAL_MODEL, local.DIMENSIONS

    def __init__(self, graph: Path):
        from tokenizers import Tokenizer

        self.graph = graph
        self.tokenizer = Tokenizer.from_file(str(local.package_model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(local.MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.single = local.onnx_session(graph, threads=1)
        self.batch = local.onnx_session(graph, threads=0)

    def _encode(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        session = self.single if len(texts) == 1 else self.batch
        return session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), 64):
            idx = order[start : start + 64]
            out[idx] = self._encode([texts[i] for i in idx])
        return normalize(out)


def before_graph(product_graph: Path) -> tuple[Path, str]:
    """The previous recipe's fused graph when the cache holds it, else the product's (said in the table)."""
    cache = local.onnx_cache_dir()
    fingerprint = local._fingerprint(local.package_model_dir())
    old = sorted(cache.glob(f"{local.LOCAL_MODEL}-{fingerprint}-[0-9a-f]*-ort*.fused.onnx"))
    old = [p for p in old if f"-{local.EXPORT_TAG}-" not in p.name]
    if old:
        return old[-1], "previous export (SDPA attention)"
    return product_graph, "product graph (previous export not in the cache)"


class Reference:
    """sentence-transformers' own encode, as an Embedder (for ingest and LoCoMo A/B)."""

    name, dimensions = local.LOCAL_MODEL, local.DIMENSIONS

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        local._offline()
        self.model = SentenceTransformer(str(local.package_model_dir()), device="cpu", local_files_only=True)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True,
                                 show_progress_bar=False)


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


def interleaved(sides: dict[str, Any], inputs: list[Any]) -> dict[str, list[float]]:
    """Seconds per input for each side, input by input (the sides' order rotating), so load hits each alike."""
    times: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    for n, x in enumerate(inputs):
        for k in names[n % len(names) :] + names[: n % len(names)]:
            t = time.perf_counter()
            sides[k](x)
            times[k].append(time.perf_counter() - t)
    return times


def in_blocks(sides: dict[str, Any], inputs: list[Any], block: int = 10) -> dict[str, list[float]]:
    """Like :func:`interleaved`, a block of inputs per side at a time, each block's first call left out.

    For short calls: a side that ran its own thread pool (torch's OpenMP,
    ONNX Runtime's intra-op threads) leaves those threads spinning for a
    while after it returns, which would be charged to the next side's call.
    """
    times: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    for n, start in enumerate(range(0, len(inputs), block)):
        for k in names[n % len(names) :] + names[: n % len(names)]:
            for i, x in enumerate(inputs[start : start + block]):
                t = time.perf_counter()
                sides[k](x)
                if i:
                    times[k].append(time.perf_counter() - t)
    return times


def table(title: str, columns: list[str], rows: list[tuple]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    console.print(t)


def bench_vectors(product: Any, int8: Any, before: Any, reference: Any, texts: list[str],
                  questions: list[str]) -> list[tuple]:
    def row(name: str, v: np.ndarray, r: np.ndarray, what: str, bound: bool = True) -> tuple:
        cos = np.sum(v * r, axis=1)
        return (name, f"{len(v)} {what}", f"{cos.mean():.6f}", f"{cos.min():.6f}", f"{np.abs(v - r).max():.1e}",
                ("yes" if cos.min() >= 0.99 else "NO") if bound else "")

    p, b, r = product.embed(texts), before.embed(texts), reference.embed(texts)
    q, pq, rq = int8.embed(texts), product.embed(questions), reference.embed(questions)
    qq = int8.embed(questions)
    return [
        row("product vs sentence-transformers", p, r, "turns"),
        row("before vs sentence-transformers", b, r, "turns"),
        row("product vs before", p, b, "turns", bound=False),
        row("int8 vs product (fp32)", q, p, "turns"),
        row("int8 vs product (fp32)", qq, pq, "questions"),
        row("int8 vs sentence-transformers", q, r, "turns"),
        row("int8 vs sentence-transformers", qq, rq, "questions"),
    ]


def bench_one_query(product: Any, exact: Any, int8: Any, before: Any, reference: Any, questions: list[str]) -> list[tuple]:
    # A side embeds a query as search does: embed_queries where it has one (the product: the int8 graph).
    sides = {"int8": int8, "product": product, "exact queries": exact, "before": before, "sentence-transformers": reference}
    for q in questions[:5]:  # warm every side
        for e in sides.values():
            getattr(e, "embed_queries", e.embed)([q])
    cpu: dict[str, list[float]] = {k: [] for k in sides}

    def timed(e: Any, k: str) -> Any:
        embed = getattr(e, "embed_queries", e.embed)

        def call(q: str) -> None:
            t = time.process_time()  # every thread of the process: torch's too
            embed([q])
            cpu[k].append(time.process_time() - t)
        return call

    times = in_blocks({k: timed(e, k) for k, e in sides.items()}, questions)
    p50 = {k: statistics.median(v) * 1000 for k, v in times.items()}
    p95 = {k: float(np.percentile(v, 95)) * 1000 for k, v in times.items()}
    cpu50 = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
    def target(k: str) -> str:
        return ("<= 3 ms: " + ("yes" if p50[k] <= 3 else "NO")) if k in ("int8", "product", "exact queries") else ""

    return [
        (k, f"{p50[k]:.2f}", f"{p95[k]:.2f}", f"{cpu50[k]:.2f}", f"{p50['sentence-transformers'] / p50[k]:.1f}x",
         f"{p50['product'] / p50[k]:.2f}x", target(k))
        for k in p50
    ]


def bench_batches(product: Any, int8: Any, before: Any, reference: Any, texts: list[str], reps: int) -> list[tuple]:
    chunk = max(1, len(texts) // reps)
    chunks = [texts[i * chunk : (i + 1) * chunk] for i in range(reps)]
    product.embed(chunks[0][:64]), before.embed(chunks[0][:64])
    times = interleaved({"product": product.embed, "int8": int8.embed, "before": before.embed,
                         "sentence-transformers": reference.embed}, chunks)
    rate = {k: chunk * len(v) / sum(v) for k, v in times.items()}
    return [(k, f"{rate[k]:.0f}", f"{rate[k] / rate['before']:.2f}x", f"{rate[k] / rate['sentence-transformers']:.2f}x") for k in rate]


def _ingest(embedder: Any, texts: list[str], tmp: str, tag: str) -> float:
    """Texts/s of store_many with embedding into a new SQLite store, with ``embedder`` in the facade."""
    settings = engram.load_settings(database_url=f"sqlite:///{tmp}/ingest-{tag}.db", embedder="local", embedding_cache_size=0)
    with engram.Memory(settings=settings) as m:
        m.embedder = embedder
        items = [{"key": f"k{i}", "content": c} for i, c in enumerate(texts)]
        t = time.perf_counter()
        for start in range(0, len(items), 500):  # an agent's bulk load: a few hundred per call
            m.store_many(items[start : start + 500], namespace="ingest")
        return len(texts) / (time.perf_counter() - t)


def bench_ingest(product: Any, before: Any, reference: Any, texts: list[str], reps: int, size: int) -> list[tuple]:
    """Each round: the next ``size`` texts into a new store, once per side (rotating); texts/s over all rounds."""
    sides = {"product": product, "before": before, "sentence-transformers": reference}
    chunks = [texts[(r * size) % len(texts) :][:size] for r in range(reps)]
    with tempfile.TemporaryDirectory(prefix="engram-embed-bench-") as tmp:
        runs = {name: (lambda chunk, e=e, name=name: _ingest(e, chunk, tmp, f"{name}-{time.monotonic_ns()}"))
                for name, e in sides.items()}
        seconds = interleaved(runs, chunks)
    rate = {k: sum(len(c) for c in chunks) / sum(v) for k, v in seconds.items()}
    return [(f"store_many with {k}", f"{rate[k]:.0f}", f"{rate[k] / rate['before']:.2f}x",
             f"{rate[k] / rate['sentence-transformers']:.2f}x",
             (">= 2x before: " + ("yes" if rate[k] >= 2 * rate["before"] else "NO")) if k == "product" else "")
            for k in rate]


def _timed(fn: Any, total: list[float]) -> Any:
    """``fn``, adding the seconds each call takes to ``total[0]``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - t

    return call


def bench_overlap(product: Any, texts: list[str], reps: int) -> list[tuple]:
    """reindex of stored entries: embedding batch N+1 while batch N is written, vs one after the other."""
    import engram.memory.semantic as semantic
    from engram.embeddings import pipeline

    def sequential(batches, prepare, write):  # the loop before the pipeline
        for batch in batches:
            write(batch, prepare(batch))

    results: dict[str, list[float]] = {"overlapped": [], "sequential": []}
    write_share: list[float] = []
    with tempfile.TemporaryDirectory(prefix="engram-embed-bench-") as tmp:
        for rep in range(reps):
            for mode in ("overlapped", "sequential") if rep % 2 == 0 else ("sequential", "overlapped"):
                settings = engram.load_settings(database_url=f"sqlite:///{tmp}/o-{mode}-{rep}.db", embedder="local",
                                                embedding_cache_size=0)
                with engram.Memory(settings=settings) as m:
                    m.embedder = product
                    m.store_many([{"key": f"k{i}", "content": c} for i, c in enumerate(texts)], embed=False)
                    writing = [0.0]
                    m.backend.put_vectors = _timed(m.backend.put_vectors, writing)  # type: ignore[method-assign]
                    semantic.overlapped = pipeline.overlapped if mode == "overlapped" else sequential  # type: ignore[assignment]
                    try:
                        t = time.perf_counter()
                        assert m.reindex() == len(texts)
                        elapsed = time.perf_counter() - t
                    finally:
                        semantic.overlapped = pipeline.overlapped  # type: ignore[assignment]
                    results[mode].append(len(texts) / elapsed)
                    if mode == "sequential":
                        write_share.append(writing[0] / elapsed)
    rate = {k: statistics.median(v) for k, v in results.items()}
    return [
        ("reindex, sequential (embed, write, embed, ...)", f"{rate['sequential']:.0f}",
         f"database writes {statistics.median(write_share):.1%} of the time", ""),
        ("reindex, overlapped (embed N+1 while N writes)", f"{rate['overlapped']:.0f}",
         f"{rate['overlapped'] / rate['sequential']:.2f}x sequential", ""),
    ]


def bench_locomo_ab(path: Path, sides: dict[str, Any]) -> list[tuple]:
    """any@k of bench/locomo.py with each side's vectors; the delta: the product (fp32 entries, int8
    queries) against exact queries."""
    import locomo

    reports = {}
    for name, e in sides.items():
        with tempfile.TemporaryDirectory(prefix="engram-locomo-ab-") as tmp:
            settings = engram.load_settings(database_url=f"sqlite:///{tmp}/l.db", embedder="none",
                                            embedding_cache_size=0)
            with engram.Memory(settings=settings) as m:
                m.embedder = e
                reports[name] = locomo.run(path, [5, 10, 20], m)
    names = list(reports)
    rows = []
    for mode in ("vector", "hybrid"):
        for k in (5, 10, 20):
            score = {n: reports[n]["modes"][mode]["scores"]["all"][f"any@{k}"] for n in names}
            delta = score["product"] - score["exact"]
            rows.append((f"{mode} any@{k}", *[f"{score[n]:.3f}" for n in names], f"{delta:+.3f}",
                         ("yes" if abs(delta) < 0.005 else "NO") if k == 10 else ""))
    return rows


def bench_int8_all(product_graph: Path, texts: list[str], questions: list[str]) -> list[tuple]:
    """int8 dynamic quantization (per-channel weights, every MatMul): accuracy and speed, single thread."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(tempfile.gettempdir()) / f"engram-bench-{product_graph.stem}.int8.onnx"
    if not target.exists():
        quantize_dynamic(str(product_graph), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    model = local._load(local.package_model_dir(), "onnx")
    fp32 = model.session
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    int8 = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
    e = local.LocalEmbedder(threads=1)
    ref = e.embed(texts)
    try:
        model.session = int8
        quant = e.embed(texts)
        cos = np.sum(ref * quant, axis=1)
        times = in_blocks({"fp32": lambda q: (setattr(model, "session", fp32), e.embed([q])),
                             "int8": lambda q: (setattr(model, "session", int8), e.embed([q]))}, questions)
    finally:
        model.session = fp32
    p50 = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return [("int8 dynamic (all MatMul + Attention)", f"{cos.mean():.4f}", f"{cos.min():.4f}", f"{(cos < 0.99).sum()}",
             f"{p50['fp32']:.2f} -> {p50['int8']:.2f} ms ({p50['fp32'] / p50['int8']:.2f}x)")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1200, help="LoCoMo turns per measurement (>= 1000 for the cosine note)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--reps", type=int, default=8, help="rounds of each side, interleaved")
    parser.add_argument("--ingest-texts", type=int, default=150, help="turns per store_many round (each side)")
    parser.add_argument("--locomo", type=Path, default=LOCOMO)
    parser.add_argument("--locomo-ab", action="store_true", help="any@k with the int8 model's vectors vs fp32's")
    parser.add_argument("--locomo-reference", action="store_true", help="--locomo-ab with sentence-transformers too")
    parser.add_argument("--int8-all", action="store_true",
                        help="also measure every matrix product in int8 (not shipped)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["vectors", "query", "batch", "ingest", "overlap"])
    args = parser.parse_args(argv)
    turns, questions = texts_of(args.locomo)
    texts, queries, all_questions = turns[: args.texts], questions[: args.queries], questions

    product = local.LocalEmbedder()  # as shipped: entries exact, queries on the int8 graph
    product.embed_queries(["load the model"])
    exact = local.LocalEmbedder(int8_queries=False)
    int8 = local.LocalEmbedder(QUANTIZED_MODEL)
    int8.embed(["load the model"])
    graph = local._load(local.package_model_dir(), "onnx").onnx_path
    before_path, before_note = before_graph(graph)
    before = Before(before_path)
    reference = Reference()
    console.print(f"product: {graph.name}, {product.threads} workers; int8: {int8._model().onnx_path.name}; "
                  f"before: {before_note}; {load_note()}")

    if "vectors" not in args.skip:
        table("vectors: cosine, pair by pair (sentence-transformers' encode is the fp32 torch reference)",
              ["pair", "texts", "mean", "min", "max |diff|", ">= 0.99"],
              bench_vectors(product, int8, before, reference, texts, all_questions))
    if "query" not in args.skip:
        table("one query (LoCoMo questions), ms", ["side", "p50", "p95", "CPU p50", "faster than s-t", "vs product",
                                                    "target"],
              bench_one_query(product, exact, int8, before, reference, queries))
        console.print(load_note())
    if "batch" not in args.skip:
        table("batch embedding, texts/s (all rounds)", ["side", "texts/s", "vs before", "vs sentence-transformers"],
              bench_batches(product, int8, before, reference, texts, args.reps))
        console.print(load_note())
    if "ingest" not in args.skip:
        table(f"ingest: store_many of {args.ingest_texts} turns with embedding into a new SQLite store, texts/s",
              ["side", "texts/s", "vs before", "vs sentence-transformers", "target"],
              bench_ingest(product, before, reference, texts, args.reps, args.ingest_texts))
        console.print(load_note())
    if "overlap" not in args.skip:
        table("overlap: embedding beside the previous batch's database write (reindex, SQLite)",
              ["path", "texts/s", "note", ""], bench_overlap(product, texts, max(1, args.reps // 3)))
        console.print(load_note())
    if args.locomo_ab:
        sides = {"product": product, "exact": exact, "int8": int8} | ({"reference": reference} if args.locomo_reference else {})
        table("LoCoMo, only the embedder switched (product: fp32 entries, int8 queries)",
              ["score", *sides, "product - exact", "|delta| < 0.005"],
              bench_locomo_ab(args.locomo, sides))
    if args.int8_all:
        table("every matrix product in int8 vs the product's fp32 (single thread; not shipped)",
              ["variant", "cos mean", "cos min", "texts < 0.99", "one query p50"],
              bench_int8_all(graph, texts, queries))
    console.print(load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
