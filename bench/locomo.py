"""LoCoMo retrieval benchmark: evidence recall of fts, vector and hybrid search.

    .venv/bin/python bench/locomo.py ../shared/data/locomo/locomo-dev.json [--k 5 10 20] [--json]

Reads any file in the LoCoMo format (a list of ``{sample_id, conversation,
qa}``), stores every dialogue turn through the public API into a fresh SQLite
store (one namespace per conversation, key = the turn's ``dia_id``, content =
``"Speaker: text"`` plus the caption of a shared photo, the session's date in
the metadata as ``date``), then asks every question of categories 1-4 in each
mode and reports evidence recall:

- any@k: at least one evidence turn is among the top k hits,
- all@k: every evidence turn is among the top k hits,

overall and per category id, plus ingest time (embedding included) and search
latency p50/p95 per mode (query embedding included).

Modes: ``vector`` and ``hybrid`` are ``Memory.search(question, mode=...)`` as
a user calls them. ``fts`` is keyword search given what hybrid runs for a
question (the OR of its content words, ``engram.search.hybrid.keyword_query``),
since plain full-text search ANDs every word of a question and finds little.
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

import engram
from engram.search import hybrid

MODES = ("fts", "vector", "hybrid")
CATEGORIES = (1, 2, 3, 4)


def turns(sample: dict) -> list[dict]:
    """The store_many items of one conversation: one per dialogue turn."""
    conv = sample["conversation"]
    sessions = sorted(
        (int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k))),
    )
    items = []
    for n in sessions:
        date = conv.get(f"session_{n}_date_time", "")
        for turn in conv[f"session_{n}"]:
            content = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                content += f" [shares a photo: {turn['blip_caption']}]"
            items.append(
                {
                    "key": turn["dia_id"],
                    "content": content,
                    "metadata": {"speaker": turn["speaker"], "session": n, "date": date},
                }
            )
    return items


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


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run(path: Path, ks: list[int], memory: engram.Memory) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    started = time.perf_counter()
    n_turns = 0
    for sample in data:
        items = turns(sample)
        n_turns += memory.store_many(items, namespace=str(sample["sample_id"]))
    ingest_s = time.perf_counter() - started

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
        f"embedder {report['embedder']}; ingest {report['ingest_s']} s ({report['ingest_turns_per_s']} turns/s)"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a LoCoMo-format JSON file")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="cut-offs (default: 5 10 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--embedder", default="auto", help="local, openai, none or auto (default)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="engram-locomo-") as tmp:
        # No query-embedding cache: every mode pays for embedding its question.
        settings = engram.load_settings(
            database_url=f"sqlite:///{tmp}/locomo.db", embedder=args.embedder, embedding_cache_size=0
        )
        with engram.Memory(settings=settings) as memory:
            report = run(args.path, sorted(set(args.k)), memory)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
