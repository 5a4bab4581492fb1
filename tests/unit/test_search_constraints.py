"""What a query demands of every hit, whatever found it (engram.search.constraints)."""

from __future__ import annotations

import pytest

from engram.search.constraints import compile_constraints
from engram.search.hybrid import embedding_text
from engram.search.query import parse


@pytest.mark.parametrize("query", ["tea", "green tea", "Caroline's e-mail", "tea OR coffee", "what did Bob drink?"])
def test_plain_words_demand_nothing(query: str) -> None:
    assert compile_constraints(parse(query)) is None


@pytest.mark.parametrize(
    "query, text, admitted",
    [
        ("tea -green", "Alice drinks black tea", True),
        ("tea -green", "Bob drinks green tea", False),
        ("tea -greens", "Bob drinks green tea", False),  # stemmed like the index
        ("tea NOT \"green tea\"", "green and tea", True),
        ("tea NOT \"green tea\"", "Green Tea!", False),
        ('"black tea"', "she likes black tea", True),
        ('"black tea"', "tea, black", False),
        ('"black tea"', "a cup of Earl Grey", False),
        ("caff*", "Caffeine keeps her awake", True),
        ("caff*", "coffee keeps her awake", False),
        ('"green tea" OR coffee', "anything at all", True),  # coffee may match by meaning
        ('("green tea" OR caff*) -milk', "caffeine with milk", False),
        ('("green tea" OR caff*) -milk', "caffeine, black", True),
    ],
)
def test_exclusions_phrases_and_prefixes_hold(query: str, text: str, admitted: bool) -> None:
    admits = compile_constraints(parse(query))
    assert admits is not None and admits((text,)) is admitted


def test_every_indexed_text_counts() -> None:
    admits = compile_constraints(parse("tea -green"))
    assert admits is not None
    assert not admits(("green", "black tea"))  # an excluded word in the key excludes, as in fts


def test_the_embedded_text_leaves_out_what_is_excluded() -> None:
    assert embedding_text("what does Bob drink?", parse("what does Bob drink?")) == "what does Bob drink?"
    assert embedding_text('the song "Four Seasons"', parse('the song "Four Seasons"')) == 'the song "Four Seasons"'
    assert embedding_text("tea -green", parse("tea -green")) == "tea"
