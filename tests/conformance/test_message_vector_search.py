"""Vector and hybrid search over chat messages, on every backend that declares MESSAGE_VECTOR.

Embeddings are given precomputed (tiny hand-made vectors), so these tests
need no model; the local model is used for real in the last test (skipped
when it is not installed).
"""

from __future__ import annotations

import numpy as np
import pytest

import engram
from engram.embeddings import local_available

pytestmark = pytest.mark.requires("message_vector")

CAT = [1.0, 0.0, 0.0, 0.0]
KITTEN = [0.9, 0.1, 0.0, 0.0]
DOG = [0.0, 1.0, 0.0, 0.0]
MONEY = [0.0, 0.0, 1.0, 0.0]


@pytest.fixture
def chat(memory: engram.Memory):
    """Two sessions of two users; returns (memory, session a, session b)."""
    a = memory.session_start().id
    b = memory.session_start().id
    memory.add_message(a, "user", "the cat sleeps on the sofa", user_id="ann", embedding=CAT)
    memory.add_messages(
        [
            {"role": "assistant", "content": "a small kitten plays", "embedding": np.array(KITTEN)},
            {"role": "user", "content": "stock prices fell", "user_id": "ann", "embedding": MONEY},
        ],
        session_id=a,
    )
    memory.add_message(b, "user", "the dog barks at night", user_id="bob", embedding=DOG)
    memory.add_message(b, "user", "my cat is grey", user_id="bob", embedding=CAT)
    return memory, a, b


def contents(result: engram.MessageSearchResult) -> list[str]:
    return [h.message.content for h in result.results]


def test_vector_search_orders_by_cosine(chat) -> None:
    memory, _, _ = chat
    result = memory.search_messages("", mode="vector", vector=CAT)
    assert set(contents(result)[:2]) == {"the cat sleeps on the sofa", "my cat is grey"}
    assert contents(result)[2] == "a small kitten plays"
    assert all(h.match_type == "vector" for h in result.results)
    top = result.results[0]
    assert top.score == pytest.approx(1.0, abs=1e-5) and top.vector_rank == 1 and top.vector_score == top.score
    assert top.fts_rank is None
    scores = [h.score for h in result.results]
    assert scores == sorted(scores, reverse=True)


def test_threshold_and_limit(chat) -> None:
    memory, _, _ = chat
    assert len(memory.search_messages("", mode="vector", vector=CAT, threshold=0.5).results) == 3
    assert memory.search_messages("", mode="vector", vector=CAT, limit=1).count == 1


def test_scope_holds_for_vector_candidates(chat) -> None:
    memory, a, b = chat
    assert contents(memory.search_messages("", mode="vector", vector=CAT, session_id=b)) == [
        "my cat is grey",
        "the dog barks at night",
    ]
    by_ann = memory.search_messages("", mode="vector", vector=CAT, user_id="ann")
    assert contents(by_ann) == ["the cat sleeps on the sofa", "stock prices fell"]
    assert memory.search_messages("", mode="vector", vector=CAT, session_id=a, user_id="bob").count == 0
    hybrid = memory.search_messages("cat", mode="hybrid", vector=CAT, session_id=a)
    assert {h.message.session_id for h in hybrid.results} == {a}


def test_hybrid_fuses_words_and_meaning(chat) -> None:
    memory, _, _ = chat
    result = memory.search_messages("kitten", mode="hybrid", vector=CAT)
    assert all(h.match_type == "hybrid" for h in result.results)
    first = result.results[0]
    assert first.message.content == "a small kitten plays"  # found by both lists
    assert first.fts_rank == 1 and first.vector_rank is not None
    by_meaning_only = [h for h in result.results if h.fts_rank is None]
    assert by_meaning_only and all(h.vector_rank is not None for h in by_meaning_only)


def test_auto_is_hybrid_with_vectors_and_fts_without(memory: engram.Memory) -> None:
    s = memory.session_start().id
    memory.add_message(s, "user", "plain words only")
    assert memory.search_messages("words", vector=CAT).results[0].match_type == "fts"  # no message vectors yet
    memory.add_message(s, "user", "words with meaning", embedding=CAT)
    assert memory.search_messages("words", vector=CAT).results[0].match_type == "hybrid"
    assert memory.search_messages("words").results[0].match_type == "fts"  # no embedder, no vector


def test_deleted_and_pruned_messages_leave_vector_search(chat) -> None:
    memory, _, b = chat
    assert memory.delete_history(b) == 2
    assert "my cat is grey" not in contents(memory.search_messages("", mode="vector", vector=CAT))
    memory.prune(keep_last_per_session=1)
    assert contents(memory.search_messages("", mode="vector", vector=CAT)) == ["stock prices fell"]


def test_bad_embeddings_and_modes_are_rejected(chat) -> None:
    memory, a, _ = chat
    with pytest.raises(engram.InvalidInput):
        memory.add_message(a, "user", "wrong size", embedding=[1.0, 0.0])
    with pytest.raises(engram.InvalidInput):
        memory.add_messages([{"role": "user", "content": "zero", "embedding": [0.0] * 4}], session_id=a)
    with pytest.raises(engram.InvalidInput):
        memory.search_messages("x", mode="nearest")
    with pytest.raises(engram.InvalidInput):
        memory.search_messages("x", mode="vector")  # no embedder and no vector
    with pytest.raises(engram.InvalidInput):
        memory.search_messages("x", mode="vector", vector=CAT, threshold=2)
    assert memory.history(a)[-1].content == "stock prices fell"  # nothing half-stored


@pytest.mark.requires("persistent")
def test_vectors_survive_reopening(memory_factory) -> None:
    url = memory_factory.url()
    first = memory_factory(url)
    s = first.session_start().id
    first.add_message(s, "user", "remember the cat", embedding=CAT)
    first.add_message(s, "user", "and the money", embedding=MONEY)
    second = memory_factory(url)
    assert contents(second.search_messages("", mode="vector", vector=MONEY))[0] == "and the money"
    # A write by one Memory is seen by the other's next search.
    first.add_message(s, "user", "more money", embedding=[0.0, 0.1, 0.9, 0.0])
    assert "more money" in contents(second.search_messages("", mode="vector", vector=MONEY))
    first.delete_history(s)
    assert second.search_messages("", mode="vector", vector=MONEY).count == 0
    assert second.search_messages("money", vector=MONEY).count == 0


@pytest.mark.skipif(not local_available(), reason="the local extra (engram[local]) is not installed")
def test_local_model_finds_a_message_by_meaning(memory_factory) -> None:
    memory = memory_factory(embedder="local")
    s = memory.session_start().id
    memory.add_messages(
        [
            {"role": "user", "content": "My dog loves chasing tennis balls in the park."},
            {"role": "assistant", "content": "The quarterly revenue report is due on Friday."},
            {"role": "user", "content": "I am allergic to peanuts, please remember that."},
        ],
        session_id=s,
    )
    assert memory.search_messages("anything", mode="vector", limit=5).count == 3  # every message was embedded
    # No word in common with the message it should find.
    hit = memory.search_messages("which food makes me sick", mode="vector", session_id=s).results[0]
    assert hit.message.content.startswith("I am allergic to peanuts")
    assert memory.search_messages("puppy playing fetch").results[0].message.content.startswith("My dog")
    # Not embedded on write (embed=False, or empty content of a tool-calling turn): reindex embeds what has content.
    memory.add_message(s, "user", "Planning a ski trip to the Alps in January.", embed=False)
    memory.add_message(s, "assistant", None, tool_calls=[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}])
    assert memory.search_messages("winter holiday in the mountains", mode="vector", limit=1).results[0].message.content != (
        "Planning a ski trip to the Alps in January."
    )
    assert memory.reindex() == 1
    hit = memory.search_messages("winter holiday in the mountains", mode="vector", limit=1).results[0]
    assert hit.message.content == "Planning a ski trip to the Alps in January."


async def test_async_message_search_modes(async_memory) -> None:
    s = (await async_memory.session_start()).id
    await async_memory.add_message(s, "user", "the cat sleeps", embedding=CAT)
    await async_memory.add_messages([{"role": "user", "content": "stock prices fell", "embedding": MONEY}], session_id=s)
    found = await async_memory.search_messages("cat", mode="hybrid", vector=CAT, session_id=s, threshold=0.5)
    assert [h.message.content for h in found.results] == ["the cat sleeps"]
    assert found.results[0].fts_rank == 1 and found.results[0].vector_rank == 1
