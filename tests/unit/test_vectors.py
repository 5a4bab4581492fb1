"""The vector index, hybrid query building and fusion, and SQLite's cross-process coherence."""

from __future__ import annotations

import numpy as np
import pytest

import engram
from engram.search.hybrid import fuse, keyword_query
from engram.search.query import Or, Term
from engram.search.vector import VectorIndex, ann_available


def _unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_index_upsert_remove_and_filter() -> None:
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 50)
    index = VectorIndex(16)
    index.upsert(list(range(50)), vectors)
    keys, scores = index.search(vectors[7], 3)
    assert keys[0] == 7 and scores[0] == pytest.approx(1.0, abs=1e-5)
    index.remove([7, 999])
    assert len(index) == 49 and 7 not in index.search(vectors[7], 49)[0]
    index.upsert([3], vectors[7:8])  # replace in place
    assert index.search(vectors[7], 1)[0][0] == 3
    keys, _ = index.search(vectors[7], 5, allowed=np.array([10, 11, 12]))
    assert set(keys) == {10, 11, 12}


@pytest.mark.skipif(not ann_available(), reason="hnswlib is not installed")
def test_hnsw_above_the_threshold_agrees_with_exact() -> None:
    rng = np.random.default_rng(1)
    centers = _unit(rng, 20, 32)
    vectors = centers[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact, ann = VectorIndex(32, exact_max=10**9), VectorIndex(32, exact_max=1000)
    for index in (exact, ann):
        index.upsert(np.arange(3000), vectors)
    assert ann.uses_ann and not exact.uses_ann
    recall = []
    for q in vectors[:50]:
        recall.append(len(set(exact.search(q, 10)[0]) & set(ann.search(q, 10)[0])) / 10)
    assert np.mean(recall) >= 0.9
    ann.remove(list(range(0, 3000, 2)))
    assert all(k % 2 == 1 for k in ann.search(vectors[0], 10)[0])
    ann.upsert([0], vectors[0:1])
    assert ann.search(vectors[0], 1)[0][0] == 0


def test_keyword_query_ors_content_words_and_keeps_operators() -> None:
    node = keyword_query("When did Caroline go to the LGBTQ support group?")
    assert node == Or((Term(("caroline",)), Term(("go",)), Term(("lgbtq",)), Term(("support",)), Term(("group",))))
    assert keyword_query("the") == Term(("the",))  # only stop words: keep them
    assert keyword_query('"support group" -caroline') is not None
    assert keyword_query('what is "unbalanced') is not None  # a stray quote is read as words
    assert keyword_query("?!") is None


def test_fuse_rewards_agreement() -> None:
    class E:
        def __init__(self, id: str):
            self.id = id

    a, b, c = E("a"), E("b"), E("c")
    fused = fuse([(a, 3.0), (b, 2.0)], [(b, 0.9), (c, 0.8)])
    assert [f.entry.id for f in fused][0] == "b"
    top = fused[0]
    assert (top.fts_rank, top.vector_rank, top.fts_score, top.vector_score) == (2, 1, 2.0, 0.9)


def _none(url: str) -> engram.Memory:
    return engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))


def test_sqlite_index_follows_writes_of_another_connection(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    reader, writer = _none(url), _none(url)
    try:
        writer.store("a", "alpha", embedding=[1.0, 0.0])
        assert [h.entry.key for h in reader.search("", mode="vector", vector=[1.0, 0.0]).results] == ["a"]
        writer.store("b", "beta", embedding=[0.9, 0.1])  # the reader's index is loaded: applied incrementally
        writer.store("a", "changed")  # content change drops a's vector
        assert [h.entry.key for h in reader.search("", mode="vector", vector=[1.0, 0.0]).results] == ["b"]
        writer.delete("b")
        assert reader.search("", mode="vector", vector=[1.0, 0.0]).count == 0
    finally:
        reader.close()
        writer.close()


def test_another_model_is_refused_until_reindex(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with _none(url) as m:
        m.store("a", "alpha", embedding=[1.0, 0.0, 0.0])

    class Fake:
        name, dimensions = "fake-model", 2

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (len(texts), 1))

    import engram.embeddings as embeddings

    settings = engram.load_settings(database_url=url, embedder="none")
    original = embeddings.create_embedder
    try:
        import engram.memory.semantic as semantic

        semantic.create_embedder = lambda s: Fake()  # type: ignore[assignment]
        with pytest.raises(engram.ConfigError, match="engram reindex"):
            engram.Memory(settings=settings)
        with engram.Memory(settings=settings, check_embedder=False) as m:
            assert m.reindex() == 1
            assert m.stats().embedding_model == "fake-model"
        with engram.Memory(settings=settings) as m:  # now accepted
            assert m.search("alpha", mode="vector").results[0].score == pytest.approx(1.0, abs=1e-5)
    finally:
        semantic.create_embedder = original  # type: ignore[assignment]
