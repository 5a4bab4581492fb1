"""pgvector in the PostgreSQL backend, on a real PostgreSQL 16 with pgvector 0.6 (the pgserver wheel).

The whole conformance suite also runs on it (the ``pgvector`` backend of
tests/conftest.py); these are what one store of the suite cannot see: where
the vectors live, which path ``stats`` reports, the migration of a store
written without pgvector, writers that do not send the column, the HNSW walk
with its namespace condition, and a change of model.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import psycopg
import pytest

import engram
from engram.errors import ConfigError
from engram.stores.postgres import PostgresStore

CAT = [1.0, 0.0, 0.0]
KITTEN = [0.9, 0.1, 0.0]
DOG = [0.0, 1.0, 0.0]


def memory(url: str, **settings) -> engram.Memory:
    return engram.Memory(
        settings=engram.load_settings(database_url=url, embedder="none", **settings)
    )


def keys(result) -> list[str]:
    return [h.entry.key for h in result.results]


def sql(url: str, query: str, params=None) -> list:
    """Run ``query`` in the store's schema of ``url`` (a direct connection, not engram's)."""
    base, _, options = url.partition("&schema=")
    schema = options.split("&")[0]
    with psycopg.connect(
        base, autocommit=True, options=f"-c search_path={schema},public"
    ) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def column_type(url: str, table: str) -> str | None:
    rows = sql(
        url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attname = 'embedding' AND NOT attisdropped",
        (table,),
    )
    return rows[0][0] if rows else None


def hnsw_indexes(url: str) -> set[str]:
    rows = sql(
        url,
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexdef LIKE '%USING hnsw%'",
    )
    return {r[0] for r in rows}


def embeddings_match_bytes(url: str, table: str) -> bool:
    """Every row's ``embedding`` holds exactly the float32s of its ``vector`` bytes."""
    # a constant table name
    rows = sql(url, f"SELECT vector, embedding::text FROM {table}")
    assert rows
    return all(
        np.array_equal(
            np.frombuffer(blob, dtype="<f4"),
            np.array(text[1:-1].split(","), dtype="<f4"),
        )
        for blob, text in rows
    )


def test_stats_say_which_vector_path_is_used(
    pgvector_url, postgres_url, tmp_path
) -> None:
    with memory(pgvector_url) as m:
        assert m.stats().vector_search == "pgvector"
    with memory(pgvector_url + "&pgvector=off") as m:
        assert m.stats().vector_search == "in-process"
    with memory(postgres_url) as m:  # the system PostgreSQL 15 has no pgvector
        assert m.stats().vector_search == "in-process"
    with memory(f"sqlite:///{tmp_path / 's.db'}") as m:
        assert m.stats().vector_search == "in-process"


def test_a_bad_pgvector_option_says_what_to_write(pgvector_url) -> None:
    with pytest.raises(ConfigError, match="'auto'.*'off'"):
        PostgresStore(pgvector_url + "&pgvector=yes")


def test_vectors_live_in_a_typed_column_under_hnsw_indexes(pgvector_url) -> None:
    with memory(pgvector_url) as m:
        # no model yet: no dimensions
        assert column_type(pgvector_url, "engram_entry_vectors") == "vector"
        m.store("cat", "the cat sleeps", embedding=CAT)
        m.add_message("s1", "user", "my cat sleeps", embedding=KITTEN)
        assert column_type(pgvector_url, "engram_entry_vectors") == "vector(3)"
        assert column_type(pgvector_url, "engram_message_vectors") == "vector(3)"
        assert hnsw_indexes(pgvector_url) == {
            "engram_entry_vectors_hnsw",
            "engram_message_vectors_hnsw",
        }
        assert embeddings_match_bytes(pgvector_url, "engram_entry_vectors")
        assert embeddings_match_bytes(pgvector_url, "engram_message_vectors")


def test_a_store_written_without_pgvector_migrates_when_it_opens_with_it(
    pgvector_url,
) -> None:
    off = pgvector_url + "&pgvector=off"
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    probe = vectors[7] + 0.1 * vectors[8]
    with memory(off) as m:
        m.store_many(
            [
                {"key": f"k{i}", "content": f"entry {i}", "embedding": v}
                for i, v in enumerate(vectors)
            ]
        )
        m.add_message("s1", "user", "hello there", embedding=vectors[0])
        before = [
            (h.entry.key, round(h.score, 5))
            for h in m.search("", mode="vector", vector=probe, limit=20).results
        ]
        assert m.stats().vector_search == "in-process"
    # nothing of pgvector was installed
    assert column_type(off, "engram_entry_vectors") is None
    with memory(pgvector_url) as m:
        assert m.stats().vector_search == "pgvector"
        after = [
            (h.entry.key, round(h.score, 5))
            for h in m.search("", mode="vector", vector=probe, limit=20).results
        ]
        assert [k for k, _ in after] == [k for k, _ in before]
        assert [s for _, s in after] == pytest.approx([s for _, s in before], abs=1e-5)
        assert [
            h.message.id
            for h in m.search_messages("", mode="vector", vector=vectors[0]).results
        ]
    assert column_type(pgvector_url, "engram_entry_vectors") == "vector(16)"
    assert hnsw_indexes(pgvector_url) == {
        "engram_entry_vectors_hnsw",
        "engram_message_vectors_hnsw",
    }
    assert embeddings_match_bytes(pgvector_url, "engram_entry_vectors")
    assert embeddings_match_bytes(pgvector_url, "engram_message_vectors")


def test_a_writer_that_does_not_send_the_column_is_caught_up_by_the_database(
    pgvector_url,
) -> None:
    """A process that opened before the extension existed (here: pgvector=off) writes bytes only."""
    stale = pgvector_url + "&pgvector=off"
    with memory(pgvector_url) as reader, memory(stale) as writer:
        reader.store("cat", "the cat sleeps", embedding=CAT)
        writer.store("kitten", "a small kitten", embedding=KITTEN)
        writer.store("dog", "the dog barks", embedding=DOG)
        # the same content, a new vector: replaced
        writer.store("cat", "the cat sleeps", embedding=DOG)
        assert keys(reader.search("", mode="vector", vector=DOG)) == [
            "cat",
            "dog",
            "kitten",
        ]
        assert embeddings_match_bytes(pgvector_url, "engram_entry_vectors")


def test_big_namespaces_walk_the_hnsw_index_and_keep_to_their_namespace(
    pgvector_url,
) -> None:
    """Above vector_exact_max a namespace is searched through the HNSW index (recall@10 >= 0.95); a
    smaller one, and a search with a metadata filter, by an exact scan; every hit is of the namespace asked."""
    rng = np.random.default_rng(5)
    big = rng.standard_normal((400, 8)).astype(np.float32)
    small = rng.standard_normal((30, 8)).astype(np.float32)
    with memory(pgvector_url, vector_exact_max=100) as m:
        m.store_many(
            [
                {
                    "key": f"b{i}",
                    "content": f"big {i}",
                    "embedding": v,
                    "metadata": {"odd": i % 2 == 1},
                }
                for i, v in enumerate(big)
            ],
            namespace="big",
        )
        m.store_many(
            [
                {"key": f"s{i}", "content": f"small {i}", "embedding": v}
                for i, v in enumerate(small)
            ],
            namespace="small",
        )
        sql(pgvector_url, "ANALYZE engram_entry_vectors")
        walks = "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'engram_entry_vectors_hnsw'"
        unit = big / np.linalg.norm(big, axis=1, keepdims=True)
        hits = 0
        for q in big[:20]:
            found = keys(
                m.search("", mode="vector", vector=q, namespace="big", limit=10)
            )
            assert all(k.startswith("b") for k in found) and len(found) == 10
            exact = {
                f"b{i}" for i in np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10]
            }
            hits += len(exact & set(found))
        assert hits / 200 >= 0.95
        # a server process reports its index scans within ~10 s
        deadline = time.monotonic() + 20
        while sql(pgvector_url, walks)[0][0] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        # the big namespace went through the index
        assert sql(pgvector_url, walks)[0][0] > 0
        # A walk would have dropped most of these (the other namespace's rows, the even ones):
        # the small namespace and the filtered search are exact scans.
        found = keys(
            m.search("", mode="vector", vector=small[0], namespace="small", limit=40)
        )
        assert set(found) == {f"s{i}" for i in range(30)} and found[0] == "s0"
        odd = m.search(
            "",
            mode="vector",
            vector=big[1],
            namespace="big",
            metadata={"odd": True},
            limit=300,
        )
        assert len(odd.results) == 200 and all(
            h.entry.metadata == {"odd": True} for h in odd.results
        )
        assert keys(odd)[0] == "b1"


def test_a_new_model_retypes_the_column(pgvector_url) -> None:
    with memory(pgvector_url) as m:
        m.store("cat", "the cat sleeps", embedding=CAT)
    store = PostgresStore(pgvector_url)
    try:
        assert store.clear_vectors() == 1
        assert column_type(pgvector_url, "engram_entry_vectors") == "vector"
        assert hnsw_indexes(pgvector_url) == set()
    finally:
        store.close()
    with memory(pgvector_url) as m:
        m.store("cat", "the cat sleeps", embedding=[0.5, 0.5, 0.5, 0.5, 0.0])
        assert column_type(pgvector_url, "engram_entry_vectors") == "vector(5)"
        assert keys(m.search("", mode="vector", vector=[1.0, 1.0, 1.0, 1.0, 0.0])) == [
            "cat"
        ]
        assert m.stats().embedding_model is not None


def test_a_store_whose_extension_was_dropped_goes_back_to_the_in_process_path(
    pgvector_url,
) -> None:
    """``DROP EXTENSION vector CASCADE`` (in a database of its own: the extension is per database)
    takes the columns; the bytes stay, and so does every vector."""
    import uuid

    base, options = pgvector_url.split("?", 1)
    server = base.rsplit("/", 1)[0]
    database = f"engram_drop_{uuid.uuid4().hex[:8]}"
    admin = f"{server}/postgres?{options.split('&')[0]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")  # our own generated name
    url = f"{server}/{database}?{options}"
    try:
        with memory(url) as m:
            m.store("cat", "the cat sleeps", embedding=CAT)
            assert m.stats().vector_search == "pgvector"
        sql(url, "DROP EXTENSION vector CASCADE")
        with memory(
            url + "&pgvector=off"
        ) as m:  # as where the extension cannot be created again
            assert m.stats().vector_search == "in-process"
            m.store("dog", "the dog barks", embedding=DOG)
            m.store("kitten", "a small kitten", embedding=KITTEN)
            assert keys(m.search("", mode="vector", vector=CAT)) == [
                "cat",
                "kitten",
                "dog",
            ]
        with memory(
            url
        ) as m:  # and back: the extension is created again, the column refilled
            assert m.stats().vector_search == "pgvector"
            assert keys(m.search("", mode="vector", vector=DOG)) == [
                "dog",
                "kitten",
                "cat",
            ]
        assert embeddings_match_bytes(url, "engram_entry_vectors")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_the_beam_widens_with_the_namespace_share_and_gives_way_to_an_exact_scan() -> (
    None
):
    from engram.stores.postgres.pgvector import beam

    assert beam(100_000, 100_000, 18) == 256  # twice the in-process engine's 128
    assert beam(300_000, 400_000, 18) == 640  # 2 x 240, over a 3/4 share
    assert (
        beam(1_000_000, 1_000_000, 18) == 1000
    )  # pgvector's limit, for a namespace that is the table
    assert beam(50_000, 1_000_000, 18) is None  # 5% of the table: scanned exactly
    assert beam(30_000, 30_000, 500) == 500  # never below what is asked
    # a graph of twice the degree and construction beam (a bulk build over 250k+) needs half
    # the in-process beam, never under its smallest (128)
    assert beam(1_000_000, 1_000_000, 18, m=32) == 400
    assert beam(300_000, 300_000, 18, m=32) == 128
    assert beam(300_000, 300_000, 18, m=16) == 480


def test_the_pgvector_option_leaves_the_rest_of_the_url_alone() -> None:
    from engram.stores.postgres.pgvector_schema import pgvector_option

    url = "postgresql://u:p@h:5432/db?schema=s&sslmode=require"
    assert pgvector_option(url) == (url, True)
    assert pgvector_option(url + "&pgvector=off") == (url, False)
    assert pgvector_option(url + "&pgvector=auto") == (url, True)


def test_a_namespace_of_a_few_thousand_vectors_walks_the_index_by_default(pgvector_url) -> None:
    """An exact scan in SQL costs ~2 us a vector, so pgvector's own threshold (2,000) is 10x below the
    in-process engine's 20,000; the vector_exact_max setting, where given, still decides."""
    vs = np.random.default_rng(9).standard_normal((2_100, 8)).astype(np.float32)
    walks = "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'engram_entry_vectors_hnsw'"
    with memory(pgvector_url) as m:
        m.store_many([{"key": f"k{i}", "content": f"c {i}", "embedding": v} for i, v in enumerate(vs)], namespace="n")
        sql(pgvector_url, "ANALYZE engram_entry_vectors")
        for q in vs[:5]:
            assert len(m.search("", mode="vector", vector=q, namespace="n", limit=10).results) == 10
        deadline = time.monotonic() + 20  # a server process reports its index scans within ~10 s
        while sql(pgvector_url, walks)[0][0] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sql(pgvector_url, walks)[0][0] > 0
    with memory(pgvector_url, vector_exact_max=5_000) as m:
        assert m.backend._pgv_exact_max() == 5_000


def test_a_large_store_moving_to_pgvector_gets_the_graph_of_a_large_bulk_build(pgvector_url, monkeypatch, caplog) -> None:
    """The index built when stored vectors move into pgvector follows the rule of a bulk build over as
    many rows (hnsw_parameters): here from 100 rows, lowered for the test."""
    from engram.stores.postgres import pgvector_schema

    monkeypatch.setattr(pgvector_schema, "LARGE_GRAPH_ROWS", 100)
    monkeypatch.setattr(pgvector_schema, "graph_memory_mb", lambda rows, dimensions: 700 + rows)
    off = pgvector_url + "&pgvector=off"
    vectors = np.random.default_rng(4).standard_normal((150, 8)).astype(np.float32)
    with memory(off) as m:
        m.store_many([{"key": f"k{i}", "content": f"entry {i}", "embedding": v} for i, v in enumerate(vectors)])
        m.add_message("s1", "user", "hello there", embedding=vectors[0])
    with caplog.at_level(logging.DEBUG, logger="engram.stores.postgres"), memory(pgvector_url + "&echo=true") as m:
        assert m.stats().vector_search == "pgvector"
    # Its memory is sized to the graph too (it was a fixed 256 MB, slow for a large store).
    sizes = [r.getMessage() for r in caplog.records if "maintenance_work_mem =" in r.getMessage()]
    assert len(sizes) == 2 and "'850MB'" in sizes[0], sizes  # the entries' graph: 150 rows
    options = "SELECT c.relname, c.reloptions FROM pg_class c WHERE c.relname LIKE 'engram_%_vectors_hnsw'"
    found = dict(sql(pgvector_url, options + " AND c.relnamespace = current_schema()::regnamespace"))
    assert {"m=32", "ef_construction=256"} <= set(found["engram_entry_vectors_hnsw"])
    assert {"m=16", "ef_construction=128"} <= set(found["engram_message_vectors_hnsw"])
