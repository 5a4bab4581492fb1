"""An entry's context shapes its vector, not its content, on every backend with vector search (issue 15).

They embed with the offline MiniLM model (``embedder="local"``).
"""

from __future__ import annotations

import numpy as np
import pytest

import engram
from engram.search.context import embedded_text

pytestmark = pytest.mark.requires("vector")

TURNS = [
    {"key": "ask", "content": "Carol: Did you end up adopting a puppy from the animal shelter?"},
    {"key": "reply", "content": "Dan: Yes, last spring, best decision I ever made!"},
    {"key": "other", "content": "Eve: The quarterly budget review moved to Thursday."},
]
QUESTION = "Who adopted a dog from a shelter?"


def cosine(memory: engram.Memory, key: str, namespace: str) -> float:
    hits = memory.search(QUESTION, mode="vector", namespace=namespace, limit=10).results
    return next(h.vector_score for h in hits if h.entry.key == key)


@pytest.fixture
def memory(memory_factory) -> engram.Memory:
    return memory_factory(embedder="local")


def test_the_turns_before_an_entry_carry_its_meaning(memory: engram.Memory) -> None:
    memory.store_many(TURNS, namespace="plain")
    memory.store_many(TURNS, namespace="windowed", context_window=1)
    assert cosine(memory, "reply", "windowed") > cosine(memory, "reply", "plain") + 0.1
    # The context is not content: the content stored and returned is what was given.
    for ns in ("plain", "windowed"):
        assert [memory.get(t["key"], namespace=ns).content for t in TURNS] == [t["content"] for t in TURNS]
    # The first turn has nothing before it: its vector is the plain one.
    assert cosine(memory, "ask", "windowed") == pytest.approx(cosine(memory, "ask", "plain"), abs=1e-5)


def test_an_own_context_is_the_same_from_store_and_store_many(memory: engram.Memory) -> None:
    context = "Carol: Did you end up adopting a puppy from the animal shelter?"
    memory.store("reply", TURNS[1]["content"], namespace="one", context=context)
    memory.store_many([{**TURNS[1], "context": context}], namespace="many")
    memory.store_many([TURNS[0], TURNS[1]], namespace="window", context_window=1)
    one = cosine(memory, "reply", "one")
    assert one == pytest.approx(cosine(memory, "reply", "many"), abs=1e-5)
    assert one == pytest.approx(cosine(memory, "reply", "window"), abs=1e-5)


def test_the_window_stays_in_its_namespace(memory: engram.Memory) -> None:
    items = [{**TURNS[0], "namespace": "a"}, {**TURNS[1], "namespace": "b"}]
    memory.store_many(items, context_window=3)
    memory.store_many([TURNS[1]], namespace="plain")
    assert cosine(memory, "reply", "b") == pytest.approx(cosine(memory, "reply", "plain"), abs=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.store("k", "v", context=5), "context must be a string"),
        (lambda m: m.store("k", "v", context="x" * 20_000), "context is 20000 characters"),
        (lambda m: m.store("k", "v", context="date \ud800"), "context has an unpaired surrogate at position 5"),
        (lambda m: m.store_many([{"key": "k", "content": "v", "context": ["a"]}]), "item 0: context must be a string"),
        (lambda m: m.store_many([{"key": "k", "content": "v"}], context_window=-1), "context_window must be"),
        (lambda m: m.store_many([{"key": "k", "content": "v"}], context_window=True), "context_window must be"),
        (lambda m: m.store_many([{"key": "k", "content": "v"}], context_window=17), "from 0 to 16"),
    ],
)
def test_a_bad_context_is_refused_and_nothing_is_stored(memory: engram.Memory, call, message: str) -> None:
    with pytest.raises(engram.InvalidInput, match=message):
        call(memory)
    assert memory.get("k") is None


def stored_vector(memory: engram.Memory, key: str, namespace: str = "default") -> np.ndarray:
    return memory.backend.get_vectors([(namespace, key)])[(namespace, key)]


def test_the_same_content_with_and_without_a_context_gets_two_vectors(memory: engram.Memory) -> None:
    content, context = TURNS[1]["content"], TURNS[0]["content"]
    alone, contextual = memory.embedder.embed([content, embedded_text(content, context)])
    memory.store("with", content, context=context)
    memory.store("without", content)  # must not reuse the vector of "with" (same content, other text embedded)
    memory.store_many([{"key": "many", "content": content}])
    assert np.allclose(stored_vector(memory, "with"), contextual, atol=1e-5)
    assert np.allclose(stored_vector(memory, "without"), alone, atol=1e-5)
    assert np.allclose(stored_vector(memory, "many"), alone, atol=1e-5)
    # And the other way round: a context given later is embedded, not taken from the plain vector.
    memory.store("without", content, context=context)
    assert np.allclose(stored_vector(memory, "without"), contextual, atol=1e-5)
    assert cosine(memory, "with", "default") == pytest.approx(cosine(memory, "without", "default"), abs=1e-5)
    assert cosine(memory, "with", "default") > cosine(memory, "many", "default") + 0.1


def test_reindex_embeds_an_entry_after_its_stored_context(memory: engram.Memory) -> None:
    content, context = TURNS[1]["content"], TURNS[0]["content"]
    memory.store_many(TURNS[:2], context_window=1)
    memory.store("plain", content, embed=False)  # reindex embeds it, from its content alone
    before = stored_vector(memory, "reply")
    memory.backend.clear_vectors()
    assert memory.reindex().entries == 3
    expected = memory.embedder.embed([embedded_text(content, context)])[0]
    assert np.allclose(stored_vector(memory, "reply"), expected, atol=1e-5)
    assert np.allclose(stored_vector(memory, "reply"), before, atol=1e-5)
    assert np.allclose(stored_vector(memory, "plain"), memory.embedder.embed([content])[0], atol=1e-5)
