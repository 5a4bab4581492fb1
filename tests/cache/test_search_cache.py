"""Repeated identical searches answered from the cache, and never stale after a write.

SQLite stores with ``storage.cache.search_results`` on, over both cache backends
(in-memory and real Redis); another process is a real process. Every write path
(store, upsert, store_many, delete, delete_namespace, import, copy, prune,
reindex, TTL expiry, a second process) is followed by a search that must see it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engram
from engram.copy import copy_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["in-memory", "redis"])
def cache_section(request: pytest.FixtureRequest) -> dict:
    if request.param == "in-memory":
        return {"type": "in-memory", "search_results": True}
    return {**request.getfixturevalue("redis_cache_settings"), "search_results": True}


@pytest.fixture
def memory(tmp_path: Path, cache_section: dict):
    settings = engram.load_settings(
        database_url=f"sqlite:///{tmp_path / 's.db'}", storage={"cache": cache_section}
    )
    with engram.Memory(settings=settings) as memory:
        yield memory


def keys(memory: engram.Memory, query: str = "apple", **kwargs) -> list[str]:
    return [hit.entry.key for hit in memory.search(query, **kwargs).results]


def cache_hits(memory: engram.Memory) -> int:
    assert memory.caches.searches is not None
    return memory.caches.searches.view.stats().hits


def test_off_by_default(tmp_path: Path) -> None:
    with engram.Memory(f"sqlite:///{tmp_path / 'd.db'}") as memory:
        assert memory.caches.searches is None


def test_a_repeated_search_is_answered_from_the_cache_with_the_same_result(
    memory: engram.Memory,
) -> None:
    memory.store("a", "apple pie", metadata={"t": 1})
    memory.search("apple")  # creates the generations: not cached yet
    first = memory.search("apple")
    hits = cache_hits(memory)
    second = memory.search("apple")
    assert cache_hits(memory) == hits + 1
    assert second.model_dump() == first.model_dump()
    memory.search("apple", limit=3)  # another request, another key
    assert cache_hits(memory) == hits + 1


def test_every_write_path_invalidates(memory: engram.Memory, tmp_path: Path) -> None:
    memory.store("a", "apple")
    assert keys(memory) == ["a"] and keys(memory) == ["a"]
    memory.store("b", "apple apple")  # store
    assert sorted(keys(memory)) == ["a", "b"]
    memory.store("a", "banana")  # upsert
    assert keys(memory) == ["b"]
    memory.store_many([{"key": "c", "content": "apple tart"}])  # store_many
    assert sorted(keys(memory)) == ["b", "c"]
    memory.delete("b")  # delete
    assert keys(memory) == ["c"]
    memory.store("x", "apple", namespace="other")
    assert sorted(keys(memory, namespace="other")) == ["x"]
    memory.delete_namespace("other")  # delete_namespace
    assert keys(memory, namespace="other") == []
    export = tmp_path / "e.jsonl"
    with engram.Memory(f"sqlite:///{tmp_path / 'src.db'}") as src:
        src.store("imported", "apple crumble")
        src.export(export)
    memory.import_(export)  # import (inside a transaction)
    assert sorted(keys(memory)) == ["c", "imported"]
    with engram.Memory(f"sqlite:///{tmp_path / 'src2.db'}") as src:
        src.store("copied", "apple strudel")
        copy_store(src, memory)  # copy into this store
    assert sorted(keys(memory)) == ["c", "copied", "imported"]


def test_an_import_invalidates_results_cached_before_it(tmp_path: Path, cache_section: dict) -> None:
    """Entries without vectors go in as rows (``Store.put_entry_rows``), not through ``put_entries``."""
    settings = engram.load_settings(
        database_url=f"sqlite:///{tmp_path / 's.db'}", embedder="none", storage={"cache": cache_section}
    )
    export = tmp_path / "e.jsonl"
    source = engram.load_settings(database_url=f"sqlite:///{tmp_path / 'src.db'}", embedder="none")
    with engram.Memory(settings=source) as src:
        src.store_many([{"key": f"imported-{i}", "content": "apple pie"} for i in range(40)])  # a bulk batch
        src.store("later", "apple later", ttl=3600)
        src.export(export)
    with engram.Memory(settings=settings) as memory:
        memory.store("a", "apple")
        for scope in ({}, {"namespace": "default"}):
            keys(memory, limit=100, **scope), keys(memory, limit=100, **scope)
            hits = cache_hits(memory)
            assert keys(memory, limit=100, **scope) == ["a"]
            assert cache_hits(memory) == hits + 1  # served from the cache
        memory.import_(export)
        for scope in ({}, {"namespace": "default"}):
            assert len(keys(memory, limit=100, **scope)) == 42


def test_a_write_elsewhere_keeps_other_namespaces_cached_but_not_all_namespace_searches(
    memory: engram.Memory,
) -> None:
    memory.store("a", "apple", namespace="one")
    for _ in range(2):
        keys(memory, namespace="one"), keys(memory)
    hits = cache_hits(memory)
    memory.store("b", "apple", namespace="two")
    assert keys(memory, namespace="one") == ["a"]
    assert cache_hits(memory) == hits + 1  # namespace one's result still good
    assert sorted(keys(memory)) == ["a", "b"]  # the all-namespace search saw the write
    assert cache_hits(memory) == hits + 1


def test_entries_that_expire_leave_results_at_once(memory: engram.Memory) -> None:
    memory.store("kept", "apple")
    memory.store("brief", "apple apple", ttl=1.0)
    assert sorted(keys(memory)) == ["brief", "kept"]
    assert sorted(keys(memory)) == ["brief", "kept"]
    time.sleep(1.2)
    assert keys(memory) == ["kept"]
    assert keys(memory, namespace="default") == ["kept"]


def test_prune_invalidates(memory: engram.Memory) -> None:
    memory.store("brief", "apple", ttl=0.5)
    memory.store("kept", "apple")
    time.sleep(0.7)
    keys(memory), keys(memory)
    memory.prune()
    assert keys(memory) == ["kept"]


def test_a_write_by_another_process_invalidates_through_a_shared_cache(
    tmp_path: Path, redis_cache_settings: dict
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    section = {**redis_cache_settings, "search_results": True}
    settings = engram.load_settings(database_url=url, storage={"cache": section})
    with engram.Memory(settings=settings) as memory:
        memory.store("a", "apple")
        assert keys(memory) == ["a"] and keys(memory) == ["a"]
        script = (
            "import engram, json, sys; s = engram.load_settings(database_url=sys.argv[1], storage=json.loads(sys.argv[2]));"
            "m = engram.Memory(settings=s); m.store('b', 'apple apple'); m.delete('a'); m.close()"
        )
        subprocess.run(
            [sys.executable, "-c", script, url, json.dumps({"cache": section})],
            check=True,
            env={"PYTHONPATH": str(REPO / "src"), "ENGRAM_EMBEDDER": "none"},
        )
        assert keys(memory) == ["b"]


def test_reindex_invalidates_searches_by_meaning(
    tmp_path: Path, cache_section: dict, embeddings_server
) -> None:
    server, _ = embeddings_server
    url = f"sqlite:///{tmp_path / 'v.db'}"
    with engram.Memory(url) as plain:  # entries without vectors
        plain.store("a", "apple")
    settings = engram.load_settings(
        database_url=url,
        storage={"cache": cache_section},
        embedder="openai",
        embedding_model="m",
        embedding_base_url=server,
        embedding_dimensions=8,
    )
    with engram.Memory(settings=settings) as memory:
        assert keys(memory, mode="vector") == [] and keys(memory, mode="vector") == []
        memory.reindex()
        assert keys(memory, mode="vector") == ["a"]
