"""Text analysis shared by the backends: folding, tokens, stems, and BM25 in Python."""

from __future__ import annotations

import pytest

from engram.search.bm25 import AnalyzedText, CompiledQuery
from engram.search.query import parse
from engram.search.text import fold, stem, stemmed_tokens, tokens


@pytest.mark.parametrize("raw, folded", [("Café", "cafe"), ("ÉCOLE", "ecole"), ("abc", "abc"), ("Straße", "straße")])
def test_fold(raw, folded):
    assert fold(raw) == folded


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, World!", ["hello", "world"]),
        ("e-mail col:term snake_case", ["e", "mail", "col", "term", "snake", "case"]),
        ("404 errors", ["404", "errors"]),
        ("a\x00b\ud800c", ["a", "b", "c"]),
        ("", []),
        ("!!! ???", []),
        ("Привет мир", ["привет", "мир"]),
    ],
)
def test_tokens(text, expected):
    assert tokens(text) == expected


@pytest.mark.parametrize("word, stemmed", [("running", "run"), ("runs", "run"), ("elephants", "eleph"), ("Swimming".lower(), "swim")])
def test_stem(word, stemmed):
    assert stem(word) == stemmed


def test_stemmed_tokens():
    assert stemmed_tokens("She was Running") == ["she", "wa", "run"]


def docs(*texts: str) -> list[tuple[str, AnalyzedText]]:
    return [(t, AnalyzedText.of("", t)) for t in texts]


def test_compiled_query_matches_like_the_language():
    corpus = docs("quick brown fox", "lazy dog", "quick dog", "brown quick")
    analyzed = [d for _, d in corpus]

    def found(query: str) -> set[str]:
        return {item for item, _ in CompiledQuery(parse(query)).rank(corpus, analyzed)}

    assert found("quick") == {"quick brown fox", "quick dog", "brown quick"}
    assert found("quick -dog") == {"quick brown fox", "brown quick"}
    assert found('"quick brown"') == {"quick brown fox"}
    assert found("fox OR lazy") == {"quick brown fox", "lazy dog"}
    assert found("qui*") == {"quick brown fox", "quick dog", "brown quick"}
    assert found("(fox OR lazy) -brown") == {"lazy dog"}


def test_bm25_scores_are_positive_and_best_first():
    corpus = docs("apple apple apple", "apple pie with cream and sugar", *[f"filler {i}" for i in range(10)])
    ranked = CompiledQuery(parse("apple")).rank(corpus, [d for _, d in corpus])
    assert [item for item, _ in ranked] == ["apple apple apple", "apple pie with cream and sugar"]
    assert ranked[0][1] > ranked[1][1] > 0


def test_key_field_is_scored():
    doc = AnalyzedText.of("zebra", "nothing")
    assert CompiledQuery(parse("zebra")).matches(doc)
    assert doc.length == 2
