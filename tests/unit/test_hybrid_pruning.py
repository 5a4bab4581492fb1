"""Hybrid search keeps the OR of a question's words affordable in big namespaces (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

import engram
from engram.search import hybrid
from engram.search.hybrid import keyword_query, prune_keywords
from engram.search.query import And, Or, Term


def counter(sizes: dict[str, int]):
    """Counts as if every word matched its own entries (an OR adds them up)."""

    def in_scope(node, cap):
        terms = node.children if isinstance(node, Or) else (node,)
        return min(cap, sum(sizes[t.tokens[0]] for t in terms))

    return in_scope, lambda term: sizes[term.tokens[0]] * 10


def test_nothing_is_dropped_while_the_matches_fit() -> None:
    node = keyword_query("melanie painted a sunset by the lake")
    in_scope, overall = counter({"melanie": 300, "painted": 20, "sunset": 5, "lake": 10})
    assert prune_keywords(node, in_scope, overall, budget=1000) is node


def test_entries_need_a_rare_word_and_every_word_still_scores() -> None:
    node = keyword_query("melanie painted a sunset by the lake")
    in_scope, overall = counter({"melanie": 5000, "painted": 400, "sunset": 50, "lake": 700})
    rare = Or((Term(("painted",)), Term(("sunset",))))
    assert prune_keywords(node, in_scope, overall, budget=1000) == And((rare, node))
    in_scope, overall = counter({"melanie": 5000, "painted": 4000, "sunset": 3000, "lake": 7000})
    assert prune_keywords(node, in_scope, overall, budget=1000) == And((Term(("sunset",)), node))


def test_other_queries_and_uncountable_backends_are_left_alone() -> None:
    node = keyword_query("sunset AND lake")
    in_scope, overall = counter({"sunset": 5000, "lake": 5000})
    assert prune_keywords(node, in_scope, overall, budget=10) is node
    plain = keyword_query("melanie painted")
    assert prune_keywords(plain, lambda n, cap: None, lambda t: 0, budget=10) is plain


@pytest.fixture(params=["sqlite", "postgres"])
def big(request, tmp_path, monkeypatch) -> engram.Memory:
    monkeypatch.setattr(hybrid, "TEXT_BUDGET", 20)
    sqlite = f"sqlite:///{tmp_path / 'p.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    memory = engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))
    items = [{"key": f"common-{i}", "content": f"the weather was nice on day {i}", "embedding": [1.0, 0.0]} for i in range(100)]
    items.append({"key": "rare", "content": "the weather on the day of the regatta", "embedding": [0.0, 1.0]})
    memory.store_many(items)
    yield memory
    memory.close()


def test_hybrid_search_over_budget_still_finds_the_rare_word(big: engram.Memory) -> None:
    top = big.search("what was the weather at the regatta", mode="hybrid", vector=[0.0, 1.0], limit=3).results
    assert top[0].entry.key == "rare" and top[0].fts_rank == 1
    assert big.backend.count_text_matches(keyword_query("weather regatta"), namespace="default", cap=1000) == 101


def test_a_query_written_with_operators_is_searched_as_written(big: engram.Memory) -> None:
    hits = big.search("weather OR regatta", mode="hybrid", vector=[1.0, 0.0], limit=100).results
    assert sum(h.fts_rank is not None for h in hits) == 100  # a full page of text matches: no word dropped


def test_a_single_namespace_store_matches_without_its_token_but_never_leaks(big: engram.Memory) -> None:
    if not hasattr(big.backend, "_scope_token"):
        pytest.skip("SQLite's shortcut for a store of one namespace")
    assert big.backend._scope_token("default") is None  # every entry is in it
    big.store("weather-elsewhere", "weather in another namespace", namespace="other")
    assert big.backend._scope_token("default") is not None
    keys = {h.entry.key for h in big.search("weather", namespace="default", mode="fts", limit=200).results}
    assert len(keys) == 101 and "weather-elsewhere" not in keys
    assert [h.entry.key for h in big.search("weather", namespace="other", mode="fts").results] == ["weather-elsewhere"]


def test_counting_in_and_out_of_a_transaction_agrees_and_leaves_the_connection_as_it_was(big: engram.Memory) -> None:
    node = keyword_query("weather regatta")
    assert big.backend.count_text_matches(node, namespace="default", cap=50) == 50
    with big.backend.transaction():
        assert big.backend.count_text_matches(node, namespace="default", cap=1000) == 101
    if hasattr(big.backend, "_pool"):  # PostgreSQL: the planner setting of the count stayed in its transaction
        with big.backend._pool.connection() as conn:
            assert conn.execute("SHOW enable_seqscan").fetchone()[0] == "on"
