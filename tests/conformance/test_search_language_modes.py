"""The query language holds in every search mode, on every backend (issue 9, item 9).

Search by meaning knows nothing of ``-word``, ``"phrases"`` or ``prefix*``;
these tests check that every hit of vector, hybrid and auto search still
honours them, that a malformed query fails alike in every mode, and that
auto search does not pad a query that matches nothing with unrelated
entries. They embed with the offline MiniLM model (``embedder="local"``).
"""

from __future__ import annotations

import pytest

import engram
from engram.search.query import MAX_QUERY_CHARS
from engram.search.text import tokens

pytestmark = pytest.mark.requires("vector")

MODES = ("auto", "hybrid", "vector", "fts")
TEA = {
    "bob": "Bob drinks green tea every morning",
    "alice": "Alice prefers black tea with milk",
    "japan": "Tea ceremonies are popular in Japan",
    "coffee": "Caffeine keeps Carol awake; she drinks coffee",
    "herbal": "Herbal tea is made from dried flowers",
}


@pytest.fixture
def teas(memory_factory) -> engram.Memory:
    memory = memory_factory(embedder="local")
    memory.store_many([{"key": k, "content": c} for k, c in TEA.items()])
    return memory


def words(hit: engram.SearchHit) -> list[str]:
    return tokens(hit.entry.content)


@pytest.mark.parametrize("mode", MODES)
def test_an_excluded_word_is_in_no_hit(teas: engram.Memory, mode: str) -> None:
    result = teas.search("tea -green", mode=mode)
    assert result.count > 0
    assert all("green" not in words(h) for h in result.results), [h.entry.key for h in result.results]
    assert "bob" not in {h.entry.key for h in result.results}


@pytest.mark.parametrize("mode", MODES)
def test_a_phrase_is_in_every_hit(teas: engram.Memory, mode: str) -> None:
    result = teas.search('"black tea"', mode=mode)
    assert [h.entry.key for h in result.results] == ["alice"]


@pytest.mark.parametrize("mode", ["auto", "hybrid"])
def test_a_prefix_finds_what_fts_finds(teas: engram.Memory, mode: str) -> None:
    fts = {h.entry.key for h in teas.search("caff*", mode="fts").results}
    assert fts == {"coffee"}
    assert {h.entry.key for h in teas.search("caff*", mode=mode).results} == fts


@pytest.mark.parametrize("mode", ["auto", "hybrid", "vector"])
def test_exclusions_combine(teas: engram.Memory, mode: str) -> None:
    found = {h.entry.key for h in teas.search('tea -"green tea" -milk', mode=mode).results}
    assert found and not {"bob", "alice"} & found


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "NEAR(", "", "   ", "tea OR", "x" * (MAX_QUERY_CHARS + 1), "-tea"],
)
def test_a_malformed_query_fails_in_every_mode(teas: engram.Memory, mode: str, query: str) -> None:
    with pytest.raises(engram.QuerySyntaxError):
        teas.search(query, mode=mode)


def test_a_query_that_matches_nothing_finds_nothing(teas: engram.Memory) -> None:
    assert teas.search("xyzzy").count == 0
    assert teas.search("xyzzy", mode="hybrid").count == 0
    # The floor only drops what meaning alone found: a word that matches still counts.
    assert [h.entry.key for h in teas.search("xyzzy OR herbal").results][:1] == ["herbal"]


def test_the_relevance_floor_is_a_setting_and_threshold_replaces_it(memory_factory) -> None:
    memory = memory_factory(embedder="local", search_relevance_floor=-1.0)
    memory.store_many([{"key": k, "content": c} for k, c in TEA.items()])
    assert memory.search("xyzzy").count == len(TEA)  # no floor: every entry is somewhat near
    assert memory.search("xyzzy", threshold=0.9).count == 0


def test_a_plain_question_is_not_constrained(teas: engram.Memory) -> None:
    # Words without operators may match by meaning: no hit needs to contain them.
    hits = teas.search("what does Bob drink in the morning", mode="vector").results
    assert hits[0].entry.key == "bob"
    # ... and a long question is searched, not refused for its number of words.
    long_question = " ".join(["what does bob drink"] * 30)
    assert teas.search(long_question, mode="hybrid").count > 0


@pytest.mark.requires("message_vector")
def test_message_search_keeps_the_language(memory_factory) -> None:
    memory = memory_factory(embedder="local")
    session = memory.session_start().id
    for content in TEA.values():
        memory.add_message(session, "user", content)
    for mode in MODES:
        hits = memory.search_messages("tea -green", mode=mode).results
        assert hits and all("green" not in tokens(h.message.content) for h in hits), mode
        with pytest.raises(engram.QuerySyntaxError):
            memory.search_messages('"unbalanced', mode=mode)
    assert memory.search_messages("xyzzy").count == 0
