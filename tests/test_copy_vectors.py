"""``copy_store`` carries embeddings between backends that store them (as export/import does)."""

from __future__ import annotations

import numpy as np
import pytest

import engram
from engram.copy import copy_store

CAT = [1.0, 0.0, 0.0]
DOG = [0.0, 1.0, 0.0]


def memory(url: str) -> engram.Memory:
    return engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))


def fill(m: engram.Memory) -> None:
    m.store("cat", "the cat sleeps", embedding=CAT, namespace="pets")
    m.store("dog", "the dog barks", embedding=DOG, namespace="pets")
    m.store_many([{"key": f"n{i}", "content": f"note {i}", "embedding": [0.1 * i, 0.5, 1.0]} for i in range(12)])
    m.store("plain", "no vector here")


@pytest.mark.parametrize("src_url, dst_url", [("sqlite", "memory"), ("memory", "sqlite")])
def test_vectors_come_along(tmp_path, src_url, dst_url) -> None:
    urls = {"sqlite": f"sqlite:///{tmp_path / 'v.db'}", "memory": "memory://"}
    with memory(urls[src_url]) as src, memory(urls[dst_url]) as dst:
        fill(src)
        copy_store(src, dst, batch_size=5)
        assert dst.stats().vectors == src.stats().vectors == 14
        assert dst.stats().embedding_model == src.stats().embedding_model
        top = dst.search("", mode="vector", vector=DOG, namespace="pets").results
        assert [h.entry.key for h in top] == ["dog", "cat"] and top[0].score == pytest.approx(1.0, abs=1e-5)
        idents = [("pets", "cat"), ("default", "n7"), ("default", "plain")]
        theirs, ours = src.backend.get_vectors(idents), dst.backend.get_vectors(idents)
        assert set(ours) == set(theirs) == {("pets", "cat"), ("default", "n7")}
        assert all(np.allclose(ours[i], theirs[i]) for i in theirs)
        copy_store(src, dst)  # twice is once
        assert dst.stats().vectors == 14


def test_vectors_of_another_model_than_the_destinations_stay_behind(tmp_path) -> None:
    with memory(f"sqlite:///{tmp_path / 's.db'}") as src, memory(f"sqlite:///{tmp_path / 'd.db'}") as dst:
        fill(src)
        dst.store("own", "a vector of four dimensions", embedding=[1.0, 0.0, 0.0, 0.0])  # another model
        counts = copy_store(src, dst)
        assert counts["entry"] == 15
        assert dst.stats().vectors == 1 and dst.get("cat", namespace="pets") is not None


def test_a_destination_without_vectors_still_gets_the_entries(tmp_path) -> None:
    (tmp_path / "j").mkdir()
    with memory("memory://") as src, memory(f"json:///{tmp_path / 'j'}") as dst:
        fill(src)
        assert copy_store(src, dst)["entry"] == 15
        assert dst.get("dog", namespace="pets").content == "the dog barks"
