"""``memory.cache`` on Memory and AsyncMemory, per project, and the embeddings it shares.

Over both cache backends (in-memory, and real Redis at 127.0.0.1:6379 DB 13);
embeddings come from a local HTTP server speaking OpenAI's ``/v1/embeddings``
protocol (see ``conftest.EmbeddingsHandler``). Processes are real processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engram
from engram.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["in-memory", "redis"])
def cache_section(request: pytest.FixtureRequest) -> dict:
    if request.param == "in-memory":
        return {"type": "in-memory", "max_entries": 100}
    return request.getfixturevalue("redis_cache_settings")


def settings_for(url: str, cache: dict, **more) -> engram.Settings:
    return engram.load_settings(database_url=url, storage={"cache": cache}, **more)


def test_memory_cache_has_the_contract(tmp_path: Path, cache_section: dict) -> None:
    with engram.Memory(
        settings=settings_for(f"sqlite:///{tmp_path / 'a.db'}", cache_section)
    ) as memory:
        memory.cache.set("user:1", {"name": "Ada"}, ttl=60)
        memory.cache.set_many({"a": 1, "b": [2]})
        assert memory.cache.get("user:1") == {"name": "Ada"}
        assert memory.cache.get_many(["a", "b", "c"]) == {"a": 1, "b": [2]}
        assert (
            memory.cache.exists("a")
            and memory.cache.delete("a")
            and not memory.cache.exists("a")
        )
        with pytest.raises(InvalidInput, match="JSON-serializable"):
            memory.cache.set("bytes", b"\x00")
        assert memory.cache.clear(prefix="user:") == 1
        stats = memory.cache.stats()
        assert (stats.hits, stats.size) == (3, 1)


async def test_async_memory_cache_behaves_the_same(
    tmp_path: Path, cache_section: dict
) -> None:
    async with engram.AsyncMemory(
        settings=settings_for(f"sqlite:///{tmp_path / 'a.db'}", cache_section)
    ) as memory:
        await memory.cache.set("k", {"v": 1}, ttl=60)
        await memory.cache.set_many({"a": 1, "b": 2})
        assert await memory.cache.get("k") == {"v": 1}
        assert await memory.cache.get("missing", "default") == "default"
        assert await memory.cache.get_many(["a", "b", "x"]) == {"a": 1, "b": 2}
        assert await memory.cache.exists("a") and await memory.cache.delete("a")
        with pytest.raises(InvalidInput, match="ttl"):
            await memory.cache.set("k", 1, ttl=-1)
        assert await memory.cache.clear() == 2
        assert (await memory.cache.stats()).size == 0
        assert memory.cache.sync is memory.sync.cache


def test_projects_have_their_own_keys_and_one_store_is_one_namespace(
    tmp_path: Path, redis_cache_settings: dict
) -> None:
    a_url, b_url = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with (
        engram.Memory(settings=settings_for(a_url, redis_cache_settings)) as a,
        engram.Memory(settings=settings_for(b_url, redis_cache_settings)) as b,
    ):
        a.cache.set("k", "a's")
        assert b.cache.get("k") is None
        b.cache.set("k", "b's")
        assert b.cache.clear() == 1 and a.cache.get("k") == "a's"
    # Another process opening store a sees a's keys.
    script = (
        "import engram, json, sys; s = engram.load_settings(database_url=sys.argv[1], storage=json.loads(sys.argv[2]));"
        "m = engram.Memory(settings=s); print(json.dumps(m.cache.get('k'))); m.close()"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            a_url,
            json.dumps({"cache": redis_cache_settings}),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "ENGRAM_EMBEDDER": "none"},
    )
    assert json.loads(out.stdout) == "a's"


def test_in_memory_stores_never_share_a_namespace(redis_cache_settings: dict) -> None:
    with (
        engram.Memory(settings=settings_for("memory://", redis_cache_settings)) as a,
        engram.Memory(settings=settings_for("memory://", redis_cache_settings)) as b,
    ):
        a.cache.set("k", 1)
        assert b.cache.get("k") is None


def embedder_settings(url: str, cache: dict, server: str, **more) -> engram.Settings:
    return settings_for(
        url,
        cache,
        embedder="openai",
        embedding_model="m",
        embedding_base_url=server,
        embedding_dimensions=8,
        **more,
    )


def test_embeddings_are_shared_through_redis_by_processes_of_one_store(
    tmp_path: Path, redis_cache_settings: dict, embeddings_server: tuple[str, list[str]]
) -> None:
    server, asked = embeddings_server
    url = f"sqlite:///{tmp_path / 'a.db'}"
    texts = [f"text number {i}" for i in range(20)]
    with engram.Memory(
        settings=embedder_settings(url, redis_cache_settings, server)
    ) as memory:
        memory.embed(texts)
    assert sorted(asked) == sorted(texts)
    script = (
        "import engram, json, sys; s = engram.load_settings(database_url=sys.argv[1], storage=json.loads(sys.argv[2]),"
        " embedder='openai', embedding_model='m', embedding_base_url=sys.argv[3], embedding_dimensions=8);"
        "m = engram.Memory(settings=s); print(json.dumps(m.embed(json.loads(sys.argv[4])).tolist())); m.close()"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            url,
            json.dumps({"cache": redis_cache_settings}),
            server,
            json.dumps(texts + ["a new text"]),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src")},
    )
    assert asked[len(texts) :] == [
        "a new text"
    ]  # the other process embedded only what was new
    with engram.Memory(
        settings=embedder_settings(url, redis_cache_settings, server)
    ) as memory:
        again = memory.embed(texts)
    assert np.allclose(json.loads(out.stdout)[:20], again, atol=1e-6)
    assert len(asked) == 21


def test_embeddings_of_one_project_are_not_visible_to_another(
    tmp_path: Path, redis_cache_settings: dict, embeddings_server: tuple[str, list[str]]
) -> None:
    """Sharing across projects would tell one tenant, by timing, what another embedded."""
    server, asked = embeddings_server
    for name in ("a", "b"):
        with engram.Memory(
            settings=embedder_settings(
                f"sqlite:///{tmp_path / name}.db", redis_cache_settings, server
            )
        ) as m:
            m.embed(["a secret sentence"])
    assert asked == ["a secret sentence", "a secret sentence"]


def test_embedding_cache_size_zero_turns_embedding_caching_off(
    tmp_path: Path, redis_cache_settings: dict, embeddings_server: tuple[str, list[str]]
) -> None:
    server, asked = embeddings_server
    settings = embedder_settings(
        f"sqlite:///{tmp_path / 'a.db'}",
        redis_cache_settings,
        server,
        embedding_cache_size=0,
    )
    with engram.Memory(settings=settings) as memory:
        memory.embed(["x"])
        memory.embed(["x"])
    assert asked == ["x", "x"]
