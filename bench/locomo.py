"""LoCoMo retrieval benchmark: evidence recall of fts, vector and hybrid search.

    .venv/bin/python bench/locomo.py ../shared/data/locomo/locomo-dev.json [--k 5 10 20] [--json]

Reads any file in the LoCoMo format (a list of ``{sample_id, conversation,
qa}``), stores every dialogue turn through the public API into a fresh SQLite
store (one namespace per conversation, key = the turn's ``dia_id``, content =
``"Speaker: text"`` plus the caption of a shared photo, the session's date in
the metadata as ``date``), one ``store_many`` per session with the session's
date as each turn's ``context`` and ``context_window=2`` (each turn is
embedded after the date and the two turns before it: engram.search.context),
then asks every question of categories 1-4 in each mode and reports evidence
recall:

- any@k: at least one evidence turn is among the top k hits,
- all@k: every evidence turn is among the top k hits,

overall and per category id, plus ingest time (embedding included) and search
latency p50/p95 per mode (query embedding included).

``--window N``, ``--no-date`` and ``--fusion rrf`` (the reciprocal rank
fusion that engram used before, k=5) are the ablations of bench/README.md.
``--compare BEFORE.json`` prints, for each mode, the before -> after table
of bench/README.md (any@5/10/20 and all@10, overall and per category)
against a report written with ``--json`` (by this script at another
commit, e.g. the commit before issue 15's recall work).
``--embedding-cache DIR`` keeps every stored text's vector in DIR across
runs (the ingest time is then not the embedder's; questions are always
embedded, so search latency is unchanged).

Modes: ``vector`` and ``hybrid`` are ``Memory.search(question, mode=...)`` as
a user calls them. ``fts`` is keyword search given what hybrid runs for a
question (the OR of its content words, ``engram.search.hybrid.keyword_query``),
since plain full-text search ANDs every word of a question and finds little.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import engram
from engram.search import hybrid

MODES = ("fts", "vector", "hybrid")
CATEGORIES = (1, 2, 3, 4)


def turns(sample: dict, *, date_context: bool = True) -> list[list[dict]]:
    """The store_many items of one conversation, a list per session: one per dialogue turn."""
    conv = sample["conversation"]
    sessions = sorted(
        (int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k))),
    )
    by_session = []
    for n in sessions:
        date = conv.get(f"session_{n}_date_time", "")
        items = []
        by_session.append(items)
        for turn in conv[f"session_{n}"]:
            content = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                content += f" [shares a photo: {turn['blip_caption']}]"
            items.append(
                {
                    "key": turn["dia_id"],
                    "content": content,
                    "metadata": {"speaker": turn["speaker"], "session": n, "date": date},
                    **({"context": date} if date_context and date else {}),
                }
            )
    return by_session


def evidence_ids(qa: dict) -> set[str]:
    ids: set[str] = set()
    for e in qa.get("evidence") or []:
        ids.update(part.strip() for part in str(e).split(";") if part.strip())
    return ids


def fts_query(question: str) -> str:
    """The keyword query hybrid search would run, written in the query language."""
    node = hybrid.keyword_query(question)
    if node is None:
        return question
    terms = getattr(node, "children", (node,))
    return " OR ".join(" ".join(t.tokens) for t in terms)


def rank_fusion(fts, vector, *, k: int = 5, depth: int | None = None) -> list[hybrid.Fused]:
    """Reciprocal rank fusion, k=5: engram's hybrid fusion before issue 15 (the ablation baseline)."""
    by_id: dict[str, hybrid.Fused] = {}
    for rank, (entry, score) in enumerate(fts, start=1):
        by_id[entry.id] = hybrid.Fused(entry, 1 / (k + rank), fts_rank=rank, fts_score=score)
    for rank, (entry, score) in enumerate(vector, start=1):
        hit = by_id.get(entry.id)
        if hit is None:
            by_id[entry.id] = hybrid.Fused(entry, 1 / (k + rank), vector_rank=rank, vector_score=score)
        else:
            hit.score += 1 / (k + rank)
            hit.vector_rank, hit.vector_score = rank, score
    best_rank = lambda f: min(r for r in (f.fts_rank, f.vector_rank) if r is not None)
    return sorted(by_id.values(), key=lambda f: (-f.score, best_rank(f)))


class DiskCachedEmbedder:
    """An embedder that keeps each text's vector (by SHA-1 of model and text) in one .npz in
    ``directory``, so runs of this bench on a shared machine embed each text once."""

    def __init__(self, inner, directory: Path) -> None:
        self.inner, self.name, self.dimensions = inner, inner.name, inner.dimensions
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', inner.name)}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as held:
                self.vectors = dict(zip(held["keys"].tolist(), held["vectors"]))
        self.added = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(f"{self.name}\0{t}".encode()).hexdigest() for t in texts]
        missing = [i for i, key in enumerate(keys) if key not in self.vectors]
        if missing:
            for i, vec in zip(missing, self.inner.embed([texts[i] for i in missing])):
                self.vectors[keys[i]] = vec
            self.added += len(missing)
        return np.stack([self.vectors[key] for key in keys]).astype(np.float32)

    def save(self) -> None:
        if self.added:
            keys = list(self.vectors)
            np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run(
    path: Path, ks: list[int], memory: engram.Memory, *, window: int = 2, date_context: bool = True, after_ingest=None
) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    started = time.perf_counter()
    n_turns = 0
    for sample in data:
        for items in turns(sample, date_context=date_context):
            n_turns += memory.store_many(items, namespace=str(sample["sample_id"]), context_window=window)
    ingest_s = time.perf_counter() - started
    if after_ingest is not None:
        after_ingest()

    questions = [
        (str(s["sample_id"]), qa)
        for s in data
        for qa in s.get("qa", [])
        if qa.get("category") in CATEGORIES and evidence_ids(qa)
    ]
    top = max(ks)
    report: dict = {
        "file": str(path),
        "conversations": len(data),
        "turns": n_turns,
        "questions": len(questions),
        "ingest_s": round(ingest_s, 3),
        "ingest_turns_per_s": round(n_turns / ingest_s, 1) if ingest_s else None,
        "embedder": None if memory.embedder is None else memory.embedder.name,
        "context": {"window": window, "date": date_context},
        "k": ks,
        "modes": {},
    }
    for mode in MODES:
        if mode != "fts" and memory.embedder is None:
            continue
        hits: dict[str, dict[int, list[tuple[bool, bool]]]] = {}
        latencies = []
        refused = 0
        for ns, qa in questions:
            query = fts_query(qa["question"]) if mode == "fts" else qa["question"]
            t0 = time.perf_counter()
            try:
                keys = [h.entry.key for h in memory.search(query, namespace=ns, limit=top, mode=mode).results]
            except engram.QuerySyntaxError:  # a question the query language refuses (an unclosed quote): a miss
                keys, refused = [], refused + 1
            latencies.append(time.perf_counter() - t0)
            wanted = evidence_ids(qa)
            for k in ks:
                found = wanted & set(keys[:k])
                outcome = (bool(found), found == wanted)
                hits.setdefault("all", {}).setdefault(k, []).append(outcome)
                hits.setdefault(str(qa["category"]), {}).setdefault(k, []).append(outcome)
        scores = {}
        for group, by_k in hits.items():
            scores[group] = {"n": len(by_k[ks[0]])}
            for k, outcomes in by_k.items():
                scores[group][f"any@{k}"] = round(sum(a for a, _ in outcomes) / len(outcomes), 3)
                scores[group][f"all@{k}"] = round(sum(b for _, b in outcomes) / len(outcomes), 3)
        report["modes"][mode] = {
            "scores": scores,
            "search_p50_ms": round(statistics.median(latencies) * 1000, 2),
            "search_p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
            "refused_queries": refused,
        }
    return report


def print_tables(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]LoCoMo[/bold] {report['file']}: {report['conversations']} conversations, "
        f"{report['turns']} turns, {report['questions']} questions (categories 1-4); "
        f"embedder {report['embedder']}; context {report.get('context')}; fusion {report.get('fusion')}; ingest {report['ingest_s']} s ({report['ingest_turns_per_s']} turns/s)"
    )
    ks = report["k"]
    for metric in ("any", "all"):
        table = Table(title=f"evidence recall {metric}@k (overall, then by category id)")
        table.add_column("mode")
        table.add_column("group")
        table.add_column("n", justify="right")
        for k in ks:
            table.add_column(f"{metric}@{k}", justify="right")
        for mode, body in report["modes"].items():
            groups = ["all"] + [str(c) for c in CATEGORIES if str(c) in body["scores"]]
            for g in groups:
                row = body["scores"][g]
                table.add_row(mode if g == "all" else "", g, str(row["n"]), *[f"{row[f'{metric}@{k}']:.3f}" for k in ks])
        console.print(table)
    lat = Table(title="search latency (ms, query embedding included)")
    lat.add_column("mode")
    lat.add_column("p50", justify="right")
    lat.add_column("p95", justify="right")
    lat.add_column("refused (QuerySyntaxError, counted as misses)", justify="right")
    for mode, body in report["modes"].items():
        lat.add_row(mode, f"{body['search_p50_ms']:.2f}", f"{body['search_p95_ms']:.2f}", str(body["refused_queries"]))
    console.print(lat)


def comparison(before: dict, after: dict, mode: str = "hybrid") -> str:
    """The before -> after table of bench/README.md for ``mode``, in Markdown: any@5/10/20 and
    all@10, overall and per category (the cut-offs both reports have)."""
    old, new = before["modes"][mode]["scores"], after["modes"][mode]["scores"]
    columns = [f"any@{k}" for k in (5, 10, 20)] + ["all@10"]
    columns = [c for c in columns if c in old.get("all", {}) and c in new.get("all", {})]
    lines = ["| group | n | " + " | ".join(columns) + " |", "|---|---:|" + "---|" * len(columns)]
    for group in ["all"] + [str(c) for c in CATEGORIES]:
        if group not in old or group not in new:
            continue
        cells = [f"{old[group][c]:.3f} -> {new[group][c]:.3f}" for c in columns]
        name = group if group == "all" else f"category {group}"
        lines.append(f"| {name} | {new[group]['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a LoCoMo-format JSON file")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="cut-offs (default: 5 10 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--embedder", default="auto", help="local, openai, none or auto (default)")
    parser.add_argument("--window", type=int, default=2, help="store_many context_window: earlier turns embedded with each (default 2; 0: none)")
    parser.add_argument("--no-date", action="store_true", help="do not give the session date as each turn's context")
    parser.add_argument("--fusion", choices=("score", "rrf"), default="score", help="score: engram's fusion; rrf: reciprocal rank fusion (k=5), as before")
    parser.add_argument("--embedding-cache", type=Path, help="keep embedded texts' vectors in this directory across runs")
    parser.add_argument("--compare", type=Path, metavar="BEFORE.json",
                        help="also print before -> after tables (Markdown) against a --json report of this script")
    args = parser.parse_args(argv)
    if args.fusion == "rrf":
        hybrid.fuse = rank_fusion  # the ablation: what engram fused with before issue 15
    with tempfile.TemporaryDirectory(prefix="engram-locomo-") as tmp:
        # No query-embedding cache: every mode pays for embedding its question.
        settings = engram.load_settings(
            database_url=f"sqlite:///{tmp}/locomo.db", embedder=args.embedder, embedding_cache_size=0
        )
        with engram.Memory(settings=settings) as memory:
            cache = None
            if args.embedding_cache and memory.embedder is not None:
                cache = DiskCachedEmbedder(memory.embedder, args.embedding_cache)
                memory.parts.semantic.embedder = cache
            def uncached() -> None:  # questions are embedded as a user's would be: their time counts
                if cache is not None:
                    cache.save()
                    memory.parts.semantic.embedder = cache.inner

            report = run(
                args.path, sorted(set(args.k)), memory, window=args.window, date_context=not args.no_date,
                after_ingest=uncached,
            )
            report["fusion"] = args.fusion
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)
    if args.compare is not None:
        before = json.loads(args.compare.read_text(encoding="utf-8"))
        for mode in report["modes"]:
            if mode in before.get("modes", {}):
                out = sys.stderr if args.json else sys.stdout  # --json keeps stdout one JSON object
                print(f"\n{mode}: {args.compare} -> this run\n{comparison(before, report, mode)}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
