"""Vectors on the server and file backends (postgresql, redis, json): what the shared conformance
file cannot see with one store -- coherence between two stores (as two processes) on one database,
persistence, expiry, and copy between every pair of VECTOR backends."""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engram
from engram.copy import copy_store

CAT = [1.0, 0.0, 0.0]
KITTEN = [0.9, 0.1, 0.0]
DOG = [0.0, 1.0, 0.0]

SHARED = ("postgresql", "pgvector", "redis", "json")


def memory(url: str) -> engram.Memory:
    return engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))


@pytest.fixture
def url_of(request, tmp_path: Path):
    def make(backend: str) -> str:
        if backend == "json":
            (tmp_path / "store").mkdir(exist_ok=True)
            return f"json:///{tmp_path / 'store'}"
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / 'v.db'}"
        if backend == "memory":
            return "memory://"
        return request.getfixturevalue({"postgresql": "postgres_url", "pgvector": "pgvector_url", "redis": "redis_url"}[backend])

    return make


def keys(result: engram.SearchResult) -> list[str]:
    return [h.entry.key for h in result.results]


@pytest.mark.parametrize("backend", SHARED)
def test_a_second_store_sees_the_writes_of_the_first(backend, url_of) -> None:
    url = url_of(backend)
    with memory(url) as a, memory(url) as b:
        a.store("cat", "the cat sleeps", embedding=CAT)
        assert keys(b.search("", mode="vector", vector=CAT)) == ["cat"]  # b loads its index now
        a.store("kitten", "a small kitten", embedding=KITTEN)
        a.store("dog", "the dog barks", embedding=DOG)
        assert keys(b.search("", mode="vector", vector=CAT)) == ["cat", "kitten", "dog"]
        a.delete("cat")
        assert keys(b.search("", mode="vector", vector=CAT)) == ["kitten", "dog"]
        a.store("kitten", "now about money")  # content changed: the vector is stale
        assert keys(b.search("", mode="vector", vector=CAT)) == ["dog"]
        assert b.stats().vectors == a.stats().vectors == 1
        a.store("cat", "the cat is back", embedding=CAT)  # same key again, a new vector
        assert keys(b.search("", mode="vector", vector=CAT))[0] == "cat"
        a.delete_namespace("default")
        assert b.search("", mode="vector", vector=CAT).count == 0
        assert b.stats().vectors == 0


@pytest.mark.parametrize("backend", SHARED)
def test_vectors_persist_and_the_model_is_kept(backend, url_of) -> None:
    url = url_of(backend)
    with memory(url) as a:
        a.store_many([{"key": f"k{i}", "content": f"note {i}", "embedding": [1.0, 0.1 * i, 0.0]} for i in range(30)])
        a.store("plain", "no vector")
    with memory(url) as b:
        assert b.stats().vectors == 30 and b.stats().embedding_model == "external"
        assert keys(b.search("", mode="vector", vector=[1.0, 0.0, 0.0], limit=3)) == ["k0", "k1", "k2"]
        missing = [e.key for batch in b.backend.entries_without_vectors(None) for e in batch]
        assert missing == ["plain"]
        got = b.backend.get_vectors([("default", "k3"), ("default", "plain")])
        assert list(got) == [("default", "k3")]
        assert np.allclose(got[("default", "k3")], np.array([1.0, 0.3, 0.0]) / np.linalg.norm([1.0, 0.3, 0.0]))
        with pytest.raises(engram.ConfigError, match="reindex"):
            b.backend.put_vectors(
                [engram.stores.base.VectorItem("default", "plain", "no vector", np.ones(4, dtype=np.float32) / 2)],
                model=engram.stores.base.VectorModel("other", 4),
            )
        assert b.backend.clear_vectors() == 30
        assert b.stats().vectors == 0 and b.backend.vector_model() is None
        assert b.search("", mode="vector", vector=CAT).count == 0


@pytest.mark.parametrize("backend", SHARED)
def test_expired_entries_leave_vector_search(backend, url_of) -> None:
    url = url_of(backend)
    with memory(url) as a, memory(url) as b:
        # A TTL long enough for the first search on a loaded machine; then sleep until it has passed.
        old = a.store("old", "gone soon", embedding=CAT, ttl=2.0)
        a.store("new", "stays", embedding=KITTEN)
        assert keys(b.search("", mode="vector", vector=CAT)) == ["old", "new"]
        time.sleep(max(0.0, (old.expires_at - datetime.now(timezone.utc)).total_seconds()) + 0.05)
        assert keys(b.search("", mode="vector", vector=CAT)) == ["new"]
        a.prune()
        assert keys(b.search("", mode="vector", vector=CAT)) == ["new"]
        assert a.stats().vectors == 1


def test_redis_vector_expires_with_its_entry(redis_url) -> None:
    with memory(redis_url) as m:
        m.store("old", "gone soon", embedding=CAT, ttl=60)
        m.store("keep", "stays", embedding=DOG)
        store = m.backend
        tail = store.keys.tail("default", "old")
        entry_at = store._client.pexpiretime(store.keys.entry("default", "old"))
        assert entry_at > 0 and store._client.pexpiretime(store.keys.vector(tail)) == entry_at
        assert store._client.pexpiretime(store.keys.vector(store.keys.tail("default", "keep"))) == -1
        m.store("old", "gone soon")  # same content, no TTL now: the vector stays and persists
        assert store._client.pexpiretime(store.keys.vector(tail)) == -1
        assert keys(m.search("", mode="vector", vector=CAT))[0] == "old"


@pytest.mark.parametrize(
    "src, dst",
    [("sqlite", "postgresql"), ("postgresql", "redis"), ("redis", "json"), ("json", "sqlite"), ("memory", "redis")],
)
def test_copy_carries_vectors(src, dst, url_of, tmp_path) -> None:
    src_url, dst_url = url_of(src), url_of(dst)
    if src == "json" and dst == "sqlite":
        dst_url = f"sqlite:///{tmp_path / 'dst.db'}"
    with memory(src_url) as a, memory(dst_url) as b:
        a.store("cat", "the cat sleeps", embedding=CAT, namespace="pets")
        a.store("dog", "the dog barks", embedding=DOG, namespace="pets")
        a.store_many([{"key": f"n{i}", "content": f"note {i}", "embedding": [0.1 * i, 0.5, 1.0]} for i in range(12)])
        a.store("plain", "no vector here")
        copy_store(a, b, batch_size=5)
        assert b.stats().vectors == a.stats().vectors == 14
        top = b.search("", mode="vector", vector=DOG, namespace="pets").results
        assert [h.entry.key for h in top] == ["dog", "cat"] and top[0].score == pytest.approx(1.0, abs=1e-5)
        copy_store(a, b)  # twice is once
        assert b.stats().vectors == 14


def _vector_writer(url: str, worker: int, start: Any, errors: Any) -> None:
    try:
        rng = random.Random(worker)
        start.wait(30)
        with memory(url) as m:
            for i in range(20):
                # Overlapping keys, batches in one transaction, content changes that drop vectors.
                items = [
                    {"key": f"shared-{j}", "content": f"shared {j} by {worker} #{i}", "embedding": [rng.random() + 0.01, 1.0, 0.5]}
                    for j in rng.sample(range(30), 5)
                ]
                items += [{"key": f"w{worker}-{i}", "content": f"own {i}", "embedding": [0.5, rng.random(), 1.0]}]
                m.store_many(items)
                m.store(f"shared-{rng.randrange(30)}", f"no vector now {worker} {i}")
                m.search("", mode="vector", vector=[1.0, 0.0, 0.0])  # refresh this process's index
    except BaseException:  # noqa: BLE001 - everything goes back to the test
        errors.put(f"worker {worker}: {traceback.format_exc()}")


@pytest.mark.parametrize("backend", ["postgresql", "pgvector", "redis"])
def test_many_processes_keep_every_index_coherent(backend, url_of) -> None:
    url = url_of(backend)
    with memory(url) as watcher:
        watcher.store("seed", "seed", embedding=[1.0, 0.0, 0.0])
        watcher.search("", mode="vector", vector=[1.0, 0.0, 0.0])  # loaded before the writers start
        ctx = mp.get_context("spawn")
        start, errors = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_vector_writer, args=(url, w, start, errors)) for w in range(4)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(120)
        problems = []
        while True:
            try:
                problems.append(errors.get_nowait())
            except queue.Empty:
                break
        assert not problems, "\n".join(problems)
        assert all(p.exitcode == 0 for p in procs)
        probe = [0.3, 0.9, 0.6]
        with memory(url) as fresh:
            expected = [(h.entry.key, round(h.score, 5)) for h in fresh.search("", mode="vector", vector=probe, limit=200).results]
        seen = [(h.entry.key, round(h.score, 5)) for h in watcher.search("", mode="vector", vector=probe, limit=200).results]
        assert seen == expected
        assert len(expected) == watcher.stats().vectors
