"""Vector and hybrid search, on every backend that declares the VECTOR capability.

Embeddings are given precomputed (tiny hand-made vectors), so these tests
need no model; the local model is tested in tests/unit/test_embeddings.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import engram

pytestmark = pytest.mark.requires("vector")

CAT = [1.0, 0.0, 0.0, 0.0]
KITTEN = [0.9, 0.1, 0.0, 0.0]
DOG = [0.0, 1.0, 0.0, 0.0]
MONEY = [0.0, 0.0, 1.0, 0.0]


@pytest.fixture
def filled(memory: engram.Memory) -> engram.Memory:
    memory.store("cat", "the cat sleeps on the sofa", embedding=CAT, metadata={"pet": True})
    memory.store("kitten", "a small kitten plays", embedding=np.array(KITTEN), metadata={"pet": True})
    memory.store("dog", "the dog barks at night", embedding=DOG, metadata={"pet": True})
    memory.store("money", "stock prices fell", embedding=MONEY, metadata={"pet": False})
    return memory


def keys(result: engram.SearchResult) -> list[str]:
    return [h.entry.key for h in result.results]


def test_vector_search_orders_by_cosine(filled: engram.Memory) -> None:
    result = filled.search("", mode="vector", vector=CAT)
    assert keys(result)[:2] == ["cat", "kitten"]
    assert all(h.match_type == "vector" for h in result.results)
    assert result.results[0].score == pytest.approx(1.0, abs=1e-5)
    assert result.results[0].vector_rank == 1 and result.results[0].vector_score == result.results[0].score
    scores = [h.score for h in result.results]
    assert scores == sorted(scores, reverse=True)


def test_threshold_drops_dissimilar(filled: engram.Memory) -> None:
    result = filled.search("", mode="vector", vector=CAT, threshold=0.5)
    assert keys(result) == ["cat", "kitten"]


def test_limit_namespace_and_metadata(filled: engram.Memory) -> None:
    filled.store("cat", "a cat elsewhere", namespace="other", embedding=CAT)
    assert keys(filled.search("", mode="vector", vector=CAT, limit=1)) == ["cat"]
    scoped = filled.search("", mode="vector", vector=CAT, namespace="other")
    assert [(h.entry.namespace, h.entry.key) for h in scoped.results] == [("other", "cat")]
    assert len(filled.search("", mode="vector", vector=CAT).results) == 5  # all namespaces
    money = filled.search("", mode="vector", vector=CAT, metadata={"pet": False})
    assert keys(money) == ["money"]


def test_content_change_drops_the_vector(filled: engram.Memory) -> None:
    filled.store("cat", "now about something else")  # no embedder: no new vector
    assert "cat" not in keys(filled.search("", mode="vector", vector=CAT))
    filled.store("cat", "now about something else", embedding=CAT)
    assert keys(filled.search("", mode="vector", vector=CAT))[0] == "cat"


def test_same_content_keeps_the_vector(filled: engram.Memory) -> None:
    filled.store("cat", "the cat sleeps on the sofa", metadata={"pet": True, "new": 1})
    assert keys(filled.search("", mode="vector", vector=CAT))[0] == "cat"


def test_delete_removes_from_vector_search(filled: engram.Memory) -> None:
    assert filled.delete("cat")
    assert "cat" not in keys(filled.search("", mode="vector", vector=CAT))
    filled.delete_namespace("default")
    assert filled.search("", mode="vector", vector=CAT).count == 0


def test_expired_entries_are_invisible(memory: engram.Memory) -> None:
    memory.store("old", "gone soon", embedding=CAT, ttl=0.001)
    memory.store("new", "stays", embedding=KITTEN)
    import time

    time.sleep(0.01)
    assert keys(memory.search("", mode="vector", vector=CAT)) == ["new"]


def test_dimension_mismatch_is_invalid_input(filled: engram.Memory) -> None:
    with pytest.raises(engram.InvalidInput, match="dimensions"):
        filled.store("x", "y", embedding=[1.0, 2.0])
    with pytest.raises(engram.InvalidInput, match="dimensions"):
        filled.search("", mode="vector", vector=[1.0, 2.0])
    with pytest.raises(engram.InvalidInput):
        filled.store("x", "y", embedding=[0.0, 0.0, 0.0, 0.0])
    with pytest.raises(engram.InvalidInput):
        filled.store("x", "y", embedding="not a vector")
    assert filled.get("x") is None  # nothing stored when the embedding is bad


def test_store_many_with_embeddings(memory: engram.Memory) -> None:
    n = memory.store_many(
        [
            {"key": "a", "content": "alpha", "embedding": CAT},
            {"key": "b", "content": "beta", "embedding": np.array(DOG, dtype=np.float64)},
            {"key": "c", "content": "gamma"},
        ]
    )
    assert n == 3
    assert keys(memory.search("", mode="vector", vector=DOG)) == ["b", "a"]
    with pytest.raises(engram.InvalidInput, match="dimensions"):
        memory.store_many([{"key": "d", "content": "d", "embedding": CAT}, {"key": "e", "content": "e", "embedding": [1]}])
    assert memory.get("d") is None


def test_store_many_with_embeddings_in_parts(memory: engram.Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the store writes one part while the next is checked (SQLite), the vectors given
    with items of every part are attached, and a bad one in a late part stores nothing."""
    from engram.memory import entries

    monkeypatch.setattr(entries, "FIRST_PART_ITEMS", 2)
    items = [{"key": f"k{i}", "content": f"text {i}", "embedding": CAT if i % 2 else DOG} for i in range(9)]
    assert memory.store_many(items) == 9
    found = memory.search("", mode="vector", vector=DOG, limit=20)
    assert sorted(keys(found)[:5]) == ["k0", "k2", "k4", "k6", "k8"]
    before = memory.stats()
    bad = [{"key": f"n{i}", "content": "x", "embedding": CAT} for i in range(8)] + [
        {"key": "late", "content": "x", "embedding": [1.0]}
    ]
    with pytest.raises(engram.InvalidInput, match="dimensions"):
        memory.store_many(bad)
    assert memory.get("n0") is None
    assert memory.stats().entries == before.entries


def test_hybrid_fuses_both_lists(filled: engram.Memory) -> None:
    result = filled.search("barks", mode="hybrid", vector=CAT)
    assert all(h.match_type == "hybrid" for h in result.results)
    by_key = {h.entry.key: h for h in result.results}
    assert by_key["dog"].fts_rank == 1 and by_key["dog"].fts_score is not None
    assert by_key["cat"].vector_rank == 1 and by_key["cat"].fts_rank is None
    # found by both lists beats found by one
    filled.store("both", "the cat barks", embedding=CAT)
    top = filled.search("cat barks", mode="hybrid", vector=CAT).results[0]
    assert top.entry.key == "both" and top.fts_rank is not None and top.vector_rank is not None


def test_hybrid_reads_a_question_as_or_of_content_words(filled: engram.Memory) -> None:
    # Plain fts ANDs the words, so a question finds nothing there ...
    assert filled.search("where does the dog sleep at night", mode="fts").count == 0
    # ... while hybrid searches the OR of the content words.
    result = filled.search("where does the dog sleep at night", mode="hybrid", vector=MONEY)
    fts_found = {h.entry.key for h in result.results if h.fts_rank is not None}
    assert {"dog", "cat"} <= fts_found


def test_auto_is_hybrid_only_where_embeddings_exist(filled: engram.Memory) -> None:
    filled.store("plain", "the cat without a vector", namespace="text-only")
    assert {h.match_type for h in filled.search("cat", vector=CAT).results} == {"hybrid"}
    assert {h.match_type for h in filled.search("cat", namespace="text-only", vector=CAT).results} == {"fts"}
    # without an embedder (and no vector given) auto is full-text
    assert {h.match_type for h in filled.search("cat").results} == {"fts"}


def test_bad_mode_and_threshold(filled: engram.Memory) -> None:
    with pytest.raises(engram.InvalidInput):
        filled.search("cat", mode="semantic")
    with pytest.raises(engram.InvalidInput):
        filled.search("cat", mode="vector", vector=CAT, threshold=2.0)
    with pytest.raises(engram.InvalidInput, match="embedder"):
        filled.search("cat", mode="vector")  # no embedder, no vector


def test_model_is_recorded_and_export_carries_vectors(filled: engram.Memory, tmp_path, memory_factory) -> None:
    stats = filled.stats()
    assert stats.vectors == 4 and stats.embedding_model == "external"
    filled.export(tmp_path / "x.jsonl")
    target = memory_factory()
    target.import_(tmp_path / "x.jsonl")
    target.import_(tmp_path / "x.jsonl")  # idempotent
    assert target.stats().vectors == 4
    assert keys(target.search("", mode="vector", vector=CAT))[:2] == ["cat", "kitten"]
