"""Context for indexing (engram.search.context) and score fusion (engram.search.hybrid.fuse): pure functions."""

from __future__ import annotations

import pytest

from engram.search.context import (
    CONTEXT_CHARS,
    bounded_context,
    embedded_text,
    windowed_contexts,
)
from engram.search.hybrid import FTS_SHARE, fuse


class E:
    def __init__(self, id: str) -> None:
        self.id = id


def test_the_content_comes_last_after_its_context() -> None:
    assert embedded_text("Yes, loved it!", "8 May 2023\nDid you see the show?") == (
        "8 May 2023\nDid you see the show?\nYes, loved it!"
    )
    assert embedded_text("plain", None) == "plain"
    assert embedded_text("plain", "") == "plain"


def test_a_long_context_keeps_its_own_start_and_the_nearest_earlier_text() -> None:
    own = "Title: " + "x" * 100
    earlier = ["old " * 200, "the turn just before"]
    got = bounded_context(own, earlier)
    assert got is not None and len(got) <= CONTEXT_CHARS
    assert got.startswith(own) and got.endswith("the turn just before")
    assert not got.split("\n")[1].startswith("ld")  # cut at a word, not inside one
    assert bounded_context("h" * (CONTEXT_CHARS + 50)) == "h" * CONTEXT_CHARS
    assert bounded_context(None, ()) is None and bounded_context("  ", ["", ""]) is None


def test_the_window_counts_earlier_items_of_the_same_namespace_only() -> None:
    got = windowed_contexts(["a", "a", "b", "a", "a"], ["1", "2", "3", "4", "5"], [None, "own", None, None, None], 2)
    assert got == [None, "own\n1", None, "1\n2", "2\n4"]
    assert windowed_contexts(["a", "a"], ["1", "2"], [None, None], 0) == [None, None]


def test_fusion_weighs_the_cosine_margin_and_the_text_rank() -> None:
    x, y = E("x"), E("y")
    # Rank fusion ties both pairs (each entry is first in one list); scores decide here.
    close = fuse([(x, 8.0), (y, 7.9)], [(y, 0.90), (x, 0.30)])
    assert [f.entry.id for f in close] == ["y", "x"]  # a wide cosine margin beats one text rank
    assert close[0].score == pytest.approx(FTS_SHARE * 2 / 3 + (1 - FTS_SHARE) * 0.90)
    tight = fuse([(x, 8.0), (y, 7.9)], [(y, 0.51), (x, 0.50)])
    assert [f.entry.id for f in tight] == ["x", "y"]  # a hair of cosine does not


def test_an_entry_missing_from_a_list_counts_the_least_that_list_could_have_given() -> None:
    a, b, c = E("a"), E("b"), E("c")
    # A full vector list (depth 2): a ranked below c, so it counts c's cosine.
    full = {f.entry.id: f for f in fuse([(a, 5.0)], [(b, 0.9), (c, 0.3)], depth=2)}
    assert full["a"].score == pytest.approx(FTS_SHARE + (1 - FTS_SHARE) * 0.3)
    assert full["b"].score == pytest.approx((1 - FTS_SHARE) * 0.9)  # no words shared: 0 from the text
    assert (full["a"].vector_rank, full["b"].fts_rank) == (None, None)
    # A shorter list holds every vector there is: a has none.
    short = {f.entry.id: f for f in fuse([(a, 5.0)], [(b, 0.9), (c, 0.3)], depth=50)}
    assert short["a"].score == pytest.approx(FTS_SHARE)
    assert fuse([], []) == []
    assert [f.entry.id for f in fuse([(a, 2.0), (b, 1.0)], [])] == ["a", "b"]
