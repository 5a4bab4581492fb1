"""Saved HNSW graphs next to a SQLite database: loaded instead of rebuilt, never stale.

Small sizes stand in for big ones: ``vector_exact_max`` is lowered so that a
namespace of a few hundred vectors gets a graph, and ``_build_ann`` is
counted to tell a graph loaded from its file from one built again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import engram
import engram.stores.sqlite.vectors as sqlite_vectors
from engram.search.vector import VectorIndex, ann_available
from engram.stores.base import VectorModel
from engram.stores.sqlite.vector_files import VectorFiles, namespace_key

pytestmark = pytest.mark.skipif(not ann_available(), reason="hnswlib is not installed")

DIM = 16
EXACT_MAX = 50


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres (HNSW recall is meaningless on uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, DIM))
    v = centres[rng.integers(0, 8, n)] + 0.4 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def open_memory(path: Path) -> engram.Memory:
    settings = engram.load_settings(database_url=f"sqlite:///{path}", embedder="none", vector_exact_max=EXACT_MAX)
    return engram.Memory(settings=settings)


def fill(memory: engram.Memory, vectors: np.ndarray, namespace: str = "big", start: int = 0) -> None:
    memory.store_many(
        [{"key": f"k{start + i}", "content": f"entry {start + i}", "embedding": v} for i, v in enumerate(vectors)],
        namespace=namespace,
    )


def nearest(memory: engram.Memory, query: np.ndarray, limit: int = 10, namespace: str = "big") -> list[str]:
    return [h.entry.key for h in memory.search("", mode="vector", vector=query, namespace=namespace, limit=limit).results]


def exact_nearest(vectors: dict[str, np.ndarray], query: np.ndarray, limit: int = 10) -> list[str]:
    keys = list(vectors)
    scores = np.stack([vectors[k] for k in keys]) @ query
    return [keys[i] for i in np.argsort(-scores)[:limit]]


@pytest.fixture
def builds(monkeypatch) -> list[int]:
    """How many vectors each HNSW build took, in order."""
    calls: list[int] = []
    original = VectorIndex._build_ann

    def counted(self, keys, vectors):
        calls.append(len(keys))
        return original(self, keys, vectors)

    monkeypatch.setattr(VectorIndex, "_build_ann", counted)
    return calls


def saved(db: Path) -> list[str]:
    directory = Path(f"{db}.vectors")
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_a_built_graph_is_saved_and_the_next_process_loads_it(tmp_path, builds) -> None:
    db = tmp_path / "a.db"
    vectors = clustered(300)
    with open_memory(db) as m:
        fill(m, vectors)
        first = nearest(m, vectors[0])
    assert builds == [300]
    files = saved(db)
    assert [f.rsplit(".", 1)[1] for f in files] == ["hnsw", "json"]
    assert files[0].startswith(namespace_key("big"))
    with open_memory(db) as m:
        assert nearest(m, vectors[0]) == first
        assert m.backend.count_vectors("big") == 300
    assert builds == [300]  # loaded, not built again


def test_changes_since_the_saved_graph_are_replayed_never_stale(tmp_path, builds) -> None:
    db = tmp_path / "b.db"
    vectors = clustered(300)
    with open_memory(db) as m:
        fill(m, vectors)
        nearest(m, vectors[0])  # builds and saves
    current = {f"k{i}": v for i, v in enumerate(vectors)}
    with open_memory(db) as writer:  # another process, which never searches
        writer.delete("k0", namespace="big")
        del current["k0"]
        writer.store("k1", "entry 1 rewritten", namespace="big")  # new content, no vector: dropped
        del current["k1"]
        moved = clustered(1, seed=99)[0]
        writer.store("k2", "entry 2", namespace="big", embedding=moved)  # same content, another vector
        current["k2"] = moved
        extra = clustered(20, seed=5)
        fill(writer, extra, start=1000)
        current.update({f"k{1000 + i}": v for i, v in enumerate(extra)})
    with open_memory(db) as reader:
        for q in (vectors[0], vectors[1], moved, extra[3], vectors[150]):
            got = nearest(reader, q)
            assert "k0" not in got and "k1" not in got
            assert len(set(got) & set(exact_nearest(current, q))) >= 9
        hit = reader.search("", mode="vector", vector=moved, namespace="big", limit=1).results[0]
        assert hit.entry.key == "k2" and hit.score == pytest.approx(1.0, abs=1e-5)
        assert reader.backend.count_vectors("big") == len(current)
    assert builds == [300]


def test_a_reader_saves_the_graph_again_after_many_changes(tmp_path, builds, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_vectors, "save_threshold", lambda n: 10)
    db = tmp_path / "c.db"
    vectors = clustered(300)
    with open_memory(db) as m:
        fill(m, vectors)
        nearest(m, vectors[0])
    (old,) = [f for f in saved(db) if f.endswith(".hnsw")]
    with open_memory(db) as writer:
        fill(writer, clustered(30, seed=3), start=1000)
    with open_memory(db) as reader:
        nearest(reader, vectors[0])  # replays 30 changes: over the threshold, so saved again
        (new,) = [f for f in saved(db) if f.endswith(".hnsw")]
        assert new != old  # the older version was removed
    assert builds == [300]


def test_a_bulk_write_builds_the_graph_not_the_first_search(tmp_path, builds, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_vectors, "BULK_SYNC", 20)
    db = tmp_path / "d.db"
    vectors = clustered(400)
    with open_memory(db) as m:
        fill(m, vectors[:40])  # still exact
        assert builds == [] and saved(db) == []
        fill(m, vectors[40:200], start=40)  # crosses the size: built and saved by the write
        assert builds == [200] and saved(db)
        fill(m, vectors[200:], start=200)  # added to the graph; saved on close at the latest
    assert builds == [200]
    with open_memory(db) as m:
        assert nearest(m, vectors[399], limit=1) == ["k399"]
        assert m.backend.count_vectors("big") == 400
    assert builds == [200]


def test_a_graph_of_another_database_at_the_same_path_is_ignored(tmp_path, builds) -> None:
    db = tmp_path / "e.db"
    with open_memory(db) as m:
        fill(m, clustered(300))
        nearest(m, clustered(1)[0])
    for p in tmp_path.glob("e.db*"):
        if p.is_file():
            p.unlink()  # the database goes, its .vectors directory stays
    other = clustered(300, seed=42)
    with open_memory(db) as m:  # a new database at the same path, same keys, same change numbers
        fill(m, other)
        for q in other[:5]:
            assert nearest(m, q, limit=1) == [f"k{int(np.argmax(other @ q))}"]
    assert builds == [300, 300]


def test_an_unreadable_graph_is_rebuilt(tmp_path, builds) -> None:
    db = tmp_path / "f.db"
    vectors = clustered(300)
    with open_memory(db) as m:
        fill(m, vectors)
        nearest(m, vectors[0])
    (graph,) = [f for f in saved(db) if f.endswith(".hnsw")]
    path = Path(f"{db}.vectors") / graph
    path.write_bytes(path.read_bytes()[:1000])
    with open_memory(db) as m:
        assert nearest(m, vectors[7], limit=1) == ["k7"]
    assert builds == [300, 300]


def test_a_graph_older_than_the_kept_change_log_is_rebuilt(tmp_path, builds, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_vectors, "CHANGE_LOG_KEEP", 5)
    db = tmp_path / "g.db"
    vectors = clustered(300)
    with open_memory(db) as m:
        fill(m, vectors)
        nearest(m, vectors[0])
    with open_memory(db) as writer:
        for i in range(10):  # pushes the graph's mark out of the kept log
            writer.store(f"k{i}", f"entry {i}", namespace="big", embedding=vectors[299 - i])
    with open_memory(db) as m:
        assert nearest(m, vectors[299], limit=1)[0] in ("k0", "k299")
        hit = m.search("", mode="vector", vector=vectors[299], namespace="big", limit=2).results
        assert {h.entry.key for h in hit} == {"k0", "k299"}
    assert builds == [300, 300]


def test_deleting_below_the_size_goes_exact_and_reindex_drops_the_files(tmp_path) -> None:
    db = tmp_path / "h.db"
    vectors = clustered(300)
    with open_memory(db) as m:
        fill(m, vectors)
        nearest(m, vectors[0])
        assert saved(db)
        for i in range(290):
            m.delete(f"k{i}", namespace="big")
        assert nearest(m, vectors[295], limit=1) == ["k295"]
        assert not m.backend._vector_state()["indexes"]["big"].uses_ann
        m.backend.clear_vectors()
    assert saved(db) == []


def test_versions_newest_first_and_half_written_ones_skipped(tmp_path) -> None:
    vectors = clustered(200)
    index = VectorIndex(DIM, exact_max=10)
    index.upsert(np.arange(200), vectors)
    index.remove([0, 1, 2])
    files = VectorFiles(tmp_path / "x.vectors", "store-1")
    model = VectorModel("m", DIM)
    assert files.save("ns", index, 10, model)
    index.remove([3])
    assert files.save("ns", index, 20, model)
    assert files.versions("ns") == [20]  # the older version is gone
    stem = tmp_path / "x.vectors" / f"{namespace_key('ns')}-{30:016d}"
    stem.with_suffix(".json").write_text(json.dumps({"format": 1}))  # a writer died before its graph
    loaded, hwm = files.load("ns", model, exact_max=10, max_hwm=100)
    assert hwm == 20 and len(loaded) == 196
    assert set(loaded.search(vectors[3], 5)[0].tolist()).isdisjoint({0, 1, 2, 3})
    assert files.load("ns", model, exact_max=10, max_hwm=19) is None  # a mark beyond the log: another database
    assert VectorFiles(tmp_path / "x.vectors", "store-2").load("ns", model, exact_max=10, max_hwm=100) is None
    assert files.load("ns", VectorModel("other", DIM), exact_max=10, max_hwm=100) is None


def test_vector_index_save_and_load_keeps_deletions(tmp_path) -> None:
    vectors = clustered(500)
    index = VectorIndex(DIM, exact_max=100)
    index.upsert(np.arange(500), vectors)
    index.remove(range(0, 500, 5))
    info = index.save(tmp_path / "g.hnsw")
    loaded = VectorIndex.load(tmp_path / "g.hnsw", info, exact_max=100)
    assert len(loaded) == 400 and loaded.uses_ann
    for q in vectors[:20]:
        keys = loaded.search(q, 10)[0]
        assert all(k % 5 for k in keys)
    loaded.upsert([0], vectors[1:2])  # a deleted key comes back with a new vector
    assert loaded.search(vectors[1], 2)[0].tolist() in ([0, 1], [1, 0])
    with pytest.raises(ValueError):
        VectorIndex(DIM).save(tmp_path / "exact.hnsw")


def _worker(db: str, worker: int) -> None:
    """One process: writes, deletes and searches, so it replays, saves and closes concurrently with others."""
    def no_build(self, keys, vectors):
        raise AssertionError("a process rebuilt the graph instead of loading a saved one")

    VectorIndex._build_ann = no_build  # type: ignore[method-assign]
    vectors = clustered(300, seed=100 + worker)
    with open_memory(Path(db)) as m:
        nearest(m, vectors[0])  # loads the saved graph
        for i in range(worker, 300, 10):  # 90 of the 300 in all: never small enough to go exact
            m.delete(f"k{i}", namespace="big")
        fill(m, vectors, start=10_000 * (worker + 1))
        nearest(m, vectors[1])  # replays >= 256 changes: saves a new version
        fill(m, vectors[:10], start=20_000 * (worker + 1))  # left for close() or the next reader


def test_processes_saving_at_once_leave_a_graph_that_is_never_stale(tmp_path, builds) -> None:
    import multiprocessing

    db = tmp_path / "mp.db"
    with open_memory(db) as m:
        fill(m, clustered(300))
        nearest(m, clustered(1)[0])
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(str(db), w)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    with open_memory(db) as m:
        rows = m.backend._read("", "SELECT e.key, v.vector FROM entries e JOIN entry_vectors v ON v.rowid = e.rowid")
        current = {key: np.frombuffer(blob, dtype="<f4") for key, blob in rows}
        assert m.backend.count_vectors("big") == len(current)
        for q in clustered(20, seed=7):
            got = nearest(m, q)
            assert set(got) <= set(current)
            assert len(set(got) & set(exact_nearest(current, q))) >= 9
    assert builds == [300]  # nobody rebuilt: every process went on from a saved graph
