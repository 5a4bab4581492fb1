"""Bulk loads into a pgvector table: rows first, the HNSW index built after, in the writer's transaction."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engram.stores.postgres import pgvector_bulk, pgvector_schema
from tests.backends.test_pgvector import keys, memory, sql

INDEX_OID = (
    "SELECT i.indexrelid, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = 'engram_entry_vectors_hnsw' AND c.relnamespace = current_schema()::regnamespace"
)


@pytest.fixture(autouse=True)
def small_bulk(monkeypatch) -> None:
    """Bulk from 50 rows, 7 rows a statement: the paths of a million-row load, at test size."""
    monkeypatch.setattr(pgvector_bulk, "BULK_MIN_ROWS", 50)
    monkeypatch.setattr(pgvector_bulk, "CHUNK_ROWS", 7)


def vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def items(prefix: str, vs: np.ndarray) -> list[dict]:
    return [{"key": f"{prefix}{i}", "content": f"{prefix} {i}", "embedding": v} for i, v in enumerate(vs)]


def index(url: str) -> tuple[int, bool] | None:
    rows = sql(url, INDEX_OID)
    return (rows[0][0], rows[0][1]) if rows else None


def recall_through_index(m, vs: np.ndarray, prefix: str) -> float:
    hits = 0
    for q in vs[:20]:
        found = keys(m.search("", mode="vector", vector=q, namespace="ns", limit=10))
        exact = {f"{prefix}{i}" for i in np.argsort(-(vs @ q))[:10]}
        hits += len(exact & set(found))
    return hits / 200


def test_a_load_that_doubles_the_table_rebuilds_the_index_after_its_rows(pgvector_url) -> None:
    data = vectors(300, 1)
    with memory(pgvector_url, vector_exact_max=20) as m:
        m.store_many(items("a", data[:10]), namespace="ns")  # records the model: the index is created
        first = index(pgvector_url)
        assert first is not None and first[1]
        m.store_many(items("b", data[10:40]), namespace="ns")  # under BULK_MIN_ROWS: rows go into the graph
        assert index(pgvector_url) == first
        m.store_many(items("c", data[40:240]), namespace="ns")  # 200 onto 40: built again, after the rows
        rebuilt = index(pgvector_url)
        assert rebuilt is not None and rebuilt[0] != first[0] and rebuilt[1]
        m.store_many(items("d", data[240:300]), namespace="ns")  # 60 onto 240: into the graph again
        assert index(pgvector_url) == rebuilt
        assert sql(pgvector_url, "SELECT count(*) FROM engram_entry_vectors")[0][0] == 300
        # every row is in the index: searches through it find the exact neighbours
        by_key = {**{f"a{i}": i for i in range(10)}, **{f"b{i}": 10 + i for i in range(30)}}
        by_key |= {f"c{i}": 40 + i for i in range(200)} | {f"d{i}": 240 + i for i in range(60)}
        hits = 0
        for q in data[::15]:
            found = keys(m.search("", mode="vector", vector=q, namespace="ns", limit=10))
            exact = set(np.argsort(-(data @ q))[:10].tolist())
            hits += len(exact & {by_key[k] for k in found})
        assert hits / (10 * len(data[::15])) >= 0.95


def test_a_bulk_load_into_an_empty_store_is_searchable_at_once(pgvector_url) -> None:
    data = vectors(120, 2)
    with memory(pgvector_url, vector_exact_max=20) as m:
        assert m.store_many(items("k", data), namespace="ns") == 120
        assert index(pgvector_url) is not None
        assert recall_through_index(m, data, "k") >= 0.95
        assert sql(pgvector_url, "SELECT count(*) FROM engram_entry_vectors WHERE embedding IS NULL") == [(0,)]


def test_a_failed_load_leaves_the_index_and_the_rows_as_they_were(pgvector_url) -> None:
    data = vectors(200, 3)
    with memory(pgvector_url, vector_exact_max=20) as m:
        m.store_many(items("a", data[:10]), namespace="ns")
        before = index(pgvector_url)
        with pytest.raises(RuntimeError), m.backend.transaction():
            m.store_many(items("b", data[10:]), namespace="ns")
            raise RuntimeError("the import fails after the load")
        assert index(pgvector_url) == before
        assert sql(pgvector_url, "SELECT count(*) FROM engram_entry_vectors")[0][0] == 10
        assert keys(m.search("", mode="vector", vector=data[3], namespace="ns", limit=1)) == ["a3"]


def test_writers_and_searches_during_a_bulk_load_all_come_out_right(pgvector_url) -> None:
    """A bulk load while other threads store single entries and search: every write lands,
    the index holds every row afterwards, nobody gets an error."""
    bulk, singles = vectors(400, 4), vectors(45, 5)
    errors: list[BaseException] = []
    with memory(pgvector_url, vector_exact_max=20) as m:
        m.store_many(items("seed", bulk[:5]), namespace="ns")

        def guarded(fn) -> None:
            try:
                fn()
            except BaseException as exc:  # reported below
                errors.append(exc)

        def load() -> None:
            m.store_many(items("bulk", bulk), namespace="ns")

        def write(part: int) -> None:
            for i in range(part, len(singles), 3):
                m.store(f"single{i}", f"single {i}", namespace="ns", embedding=singles[i])

        def search() -> None:
            for q in singles[:15]:
                m.search("", mode="vector", vector=q, namespace="ns", limit=5)

        threads = [threading.Thread(target=guarded, args=(load,))]
        threads += [threading.Thread(target=guarded, args=(lambda p=p: write(p),)) for p in range(3)]
        threads.append(threading.Thread(target=guarded, args=(search,)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert sql(pgvector_url, "SELECT count(*) FROM engram_entry_vectors")[0][0] == 5 + 400 + 45
        assert index(pgvector_url)[1]
        for i, q in enumerate(singles):  # each single entry is its own nearest, through the index
            assert keys(m.search("", mode="vector", vector=q, namespace="ns", limit=1)) == [f"single{i}"]


def test_the_graph_memory_estimate_grows_with_rows_and_dimensions() -> None:
    small, big = pgvector_schema.graph_memory_mb(100_000, 384), pgvector_schema.graph_memory_mb(1_000_000, 384)
    assert 150 < small < 400 and 1500 < big < 4000  # pgvector reported ~2 GB for 1M x 384 (m 16)
    assert pgvector_schema.graph_memory_mb(100_000, 768) > small


def test_the_batches_of_one_transaction_add_up_to_one_build_at_its_end(pgvector_url) -> None:
    """As an import: batches each under BULK_MIN_ROWS, together a bulk load; one build, at the end."""
    data = vectors(200, 6)
    with memory(pgvector_url, vector_exact_max=20) as m:
        m.store_many(items("a", data[:10]), namespace="ns")
        before = index(pgvector_url)
        with m.backend.transaction():
            for start in range(10, 200, 38):
                m.store_many(items(f"b{start}-", data[start : start + 38]), namespace="ns")
        after = index(pgvector_url)
        assert after is not None and after[0] != before[0] and after[1]
        assert sql(pgvector_url, "SELECT count(*) FROM engram_entry_vectors")[0][0] == 200
        for i in (0, 57, 150, 199):
            assert m.search("", mode="vector", vector=data[i], namespace="ns", limit=1).results[0].score > 0.999


def test_a_bulk_build_of_a_large_graph_doubles_its_degree(pgvector_url, monkeypatch) -> None:
    """m=16 stays under recall@10 0.95 at 1M up to pgvector's ef_search limit; a graph built over
    LARGE_GRAPH_ROWS or more gets m=32 (here from 100 rows), a smaller one keeps m=16."""
    from engram.stores.postgres import pgvector_schema

    monkeypatch.setattr(pgvector_schema, "LARGE_GRAPH_ROWS", 100)
    options = (
        "SELECT c.reloptions FROM pg_class c WHERE c.relname = 'engram_entry_vectors_hnsw'"
        " AND c.relnamespace = current_schema()::regnamespace"
    )
    data = vectors(180, 5)
    with memory(pgvector_url, vector_exact_max=20) as m:
        m.store_many(items("s", data[:60]), namespace="ns")  # 60 rows: built small
        assert "m=16" in sql(pgvector_url, options)[0][0]
        assert m.backend._pgv_sizes("ns")[2] == 16  # what the search's beam reads
        m.store_many(items("l", data[60:]), namespace="ns")  # 120 onto 60: rebuilt over 180
        assert {"m=32", "ef_construction=256"} <= set(sql(pgvector_url, options)[0][0])
        assert m.backend._pgv_sizes("ns")[2] == 32
        found = keys(m.search("", mode="vector", vector=data[100], namespace="ns", limit=10))
        assert found[0] == "l40"  # the vector itself, through the new graph
