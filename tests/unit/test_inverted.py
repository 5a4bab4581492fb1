"""The inverted index ranks exactly like ``CompiledQuery.rank`` over the same corpus."""

from __future__ import annotations

import random

import pytest

from engram.search.bm25 import AnalyzedText, CompiledQuery
from engram.search.inverted import InvertedIndex
from engram.search.query import parse

WORDS = "apple banana cherry run running runs swim fox dog cat quick brown lazy the a of in on s".split()


def corpus(seed: int, n: int = 300) -> dict[str, AnalyzedText]:
    rng = random.Random(seed)
    return {
        f"d{i:04d}": AnalyzedText.of(f"key-{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 20))))
        for i in range(n)
    }


QUERIES = [
    "apple", "run", "quick fox", '"quick brown"', "ru*", '"the qu"*', "apple OR dog", "cat -dog",
    "(apple OR cherry) -run", "key", "key-1*", "a", "s", '"fox fox"', "nothing", "apple AND (dog OR cat) -lazy",
]


@pytest.mark.parametrize("query", QUERIES)
def test_same_matches_and_scores_as_a_full_scan(query):
    docs = corpus(1)
    index: InvertedIndex[str] = InvertedIndex()
    for key, doc in docs.items():
        index.add(key, doc)
    compiled = CompiledQuery(parse(query))
    expected = {k: s for k, s in compiled.rank(list(docs.items()), list(docs.values()))}
    got = dict(index.rank(compiled))
    assert got.keys() == expected.keys()
    for key in got:
        assert got[key] == pytest.approx(expected[key], rel=1e-12)
    ranked = index.rank(compiled)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_updates_removals_and_sync():
    index: InvertedIndex[str] = InvertedIndex()
    index.add("a", AnalyzedText.of("a", "apple pie"))
    index.add("b", AnalyzedText.of("b", "banana"))
    index.add("a", AnalyzedText.of("a", "cherry"))  # replaces
    assert [k for k, _ in index.rank(CompiledQuery(parse("apple")))] == []
    assert [k for k, _ in index.rank(CompiledQuery(parse("cherry")))] == ["a"]
    index.remove("a")
    index.remove("missing")
    assert "cherri" not in index.postings and len(index) == 1
    index.sync(["b", "c"], lambda keys: {k: AnalyzedText.of(k, "cherry") for k in keys})
    assert sorted(index.docs) == ["b", "c"]
    assert index.total_length == sum(d.length for d in index.docs.values())


def test_accept_filters_and_ties_are_deterministic():
    index: InvertedIndex[str] = InvertedIndex()
    for key in ("z", "m", "a"):
        index.add(key, AnalyzedText.of("", "same words"))
    compiled = CompiledQuery(parse("same"))
    assert [k for k, _ in index.rank(compiled)] == ["a", "m", "z"]
    assert [k for k, _ in index.rank(compiled, accept=lambda k: k != "m")] == ["a", "z"]
