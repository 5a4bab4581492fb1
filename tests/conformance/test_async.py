"""AsyncMemory: the same methods as Memory, awaited, with the same results."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from typing import Any

import pytest

import engram


class Awaitable:
    """Gives a sync Memory the async calling convention, to run one scenario on both."""

    def __init__(self, memory: engram.Memory):
        self._memory = memory

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._memory, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


def normalize(value: Any, ids: dict[str, str]) -> Any:
    """Replace ids by their order of appearance and drop timestamps, to compare two runs."""
    if isinstance(value, list):
        return [normalize(v, ids) for v in value]
    if isinstance(value, tuple):
        return tuple(normalize(v, ids) for v in value)
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k.endswith("_at"):
                out[k] = v is not None
            elif k in ("id", "session_id") and isinstance(v, str):
                out[k] = ids.setdefault(v, f"id{len(ids)}")
            elif k == "url":
                continue
            elif k == "size_bytes":
                continue
            else:
                out[k] = normalize(v, ids)
        return out
    return value


async def entries_scenario(m: Any) -> list[Any]:
    out: list[Any] = []
    out.append(await m.store("a", "alpha content", namespace="ns1", metadata={"t": 1}))
    await asyncio.sleep(0.002)
    out.append(await m.store("b", "beta content", namespace="ns1", metadata={"t": 2}))
    await asyncio.sleep(0.002)
    out.append(await m.store("a", "alpha again", namespace="ns1", metadata={"t": 3}))
    out.append(await m.store_many([{"key": f"k{i}", "content": f"bulk {i}"} for i in range(5)], namespace="ns2"))
    out.append(await m.get("a", namespace="ns1"))
    out.append(await m.get("missing"))
    out.append([e.key for e in await m.list(namespace="ns1")])
    out.append(await m.list(metadata={"t": 3}))
    out.append(sorted(e.key for e in await m.list(key_prefix="k", limit=3, offset=1)))
    out.append(await m.namespaces())
    out.append(await m.delete("b", namespace="ns1"))
    out.append(await m.delete("b", namespace="ns1"))
    out.append(await m.delete_namespace("ns2"))
    out.append(await m.store("short", "lived", ttl=0.05))
    await asyncio.sleep(0.1)
    out.append(await m.get("short"))
    out.append(await m.prune())

    session = await m.session_start({"user": "x"})
    out.append(session)
    task = await m.task_create("agent", {"in": 1}, session_id=session.id)
    out.append(task)
    out.append(await m.task_update(task.id, "completed", output={"out": 2}))
    out.append(await m.task_get(task.id))
    out.append(await m.tasks(session_id=session.id))
    out.append(await m.session_end(session.id, status="error"))
    out.append(await m.session_get(session.id))
    out.append(await m.sessions(status="error"))
    out.append(await m.stats())
    for bad in (
        m.store("", "x"),
        m.session_end(str(uuid.uuid4())),
        m.session_end(session.id),
        m.task_update(str(uuid.uuid4()), "running"),
        m.list(limit=0),
    ):
        try:
            await bad
        except engram.EngramError as exc:
            out.append((type(exc).__name__, str(exc).split(" ")[0]))
    return out


async def search_scenario(m: Any) -> list[Any]:
    await m.store_many(
        [
            {"key": "fox", "content": "the quick brown fox"},
            {"key": "dog", "content": "the lazy dog sleeps"},
            {"key": "runner", "content": "running every day", "namespace": "sport"},
            {"key": "tagged", "content": "quick tagged note", "metadata": {"tag": "x"}},
        ]
    )
    out: list[Any] = []
    for query, kwargs in [
        ("quick", {}),
        ('"quick brown"', {}),
        ("quick -fox", {}),
        ("fox OR dog", {"limit": 1}),
        ("run", {"namespace": "sport"}),
        ("run", {"namespace": "default"}),
        ("quick", {"metadata": {"tag": "x"}}),
    ]:
        result = await m.search(query, **kwargs)
        out.append((result.count, [(h.entry.key, h.match_type) for h in result.results]))
    try:
        await m.search('"unclosed')
    except engram.QuerySyntaxError as exc:
        out.append(str(exc))
    return out


async def test_async_gives_the_same_results_as_sync(async_memory, memory):
    async_run = await entries_scenario(async_memory)
    sync_run = await entries_scenario(Awaitable(memory))
    assert len(async_run) == len(sync_run) == 30
    assert normalize(async_run, {}) == normalize(sync_run, {})


@pytest.mark.requires("fts")
async def test_async_search_gives_the_same_results_as_sync(async_memory, memory):
    async_run = await search_scenario(async_memory)
    sync_run = await search_scenario(Awaitable(memory))
    assert async_run == sync_run
    assert async_run[0][0] == 2


async def test_async_returns_models(async_memory):
    entry = await async_memory.store("k", "v")
    assert isinstance(entry, engram.Entry)
    assert await async_memory.get("k") == entry
    assert async_memory.sync.get("k") == entry  # the same store behind both faces
    assert async_memory.url == async_memory.sync.url
    assert repr(async_memory).startswith("AsyncMemory(")


async def test_concurrent_calls(async_memory):
    stored = await asyncio.gather(*(async_memory.store(f"k{i}", f"content {i}") for i in range(50)))
    assert len({e.id for e in stored}) == 50
    assert len(await async_memory.list(limit=100)) == 50
    found = await asyncio.gather(*(async_memory.get(f"k{i}") for i in range(50)))
    assert [e.content for e in found] == [f"content {i}" for i in range(50)]


async def test_concurrent_upserts_of_one_key_keep_one_entry(async_memory):
    first = await async_memory.store("k", "v0")
    results = await asyncio.gather(*(async_memory.store("k", f"v{i}") for i in range(1, 30)))
    assert {e.id for e in results} == {first.id}
    assert len(await async_memory.list()) == 1


async def test_errors_keep_their_types(async_memory):
    with pytest.raises(engram.InvalidInput, match="key"):
        await async_memory.store("", "x")
    with pytest.raises(engram.NotFound):
        await async_memory.session_end(str(uuid.uuid4()))
    with pytest.raises(engram.NotFound):
        await async_memory.task_create("agent", "x", session_id=str(uuid.uuid4()))


async def test_calls_do_not_block_the_event_loop(async_memory):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await async_memory.store_many([{"key": f"k{i}", "content": "x" * 1000} for i in range(2000)])
    finally:
        task.cancel()
    assert ticks > 1


async def test_async_export_import(async_memory, memory_factory, tmp_path):
    await async_memory.store("k", "v", metadata={"x": 1})
    await async_memory.session_start()
    counts = await async_memory.export(tmp_path / "dump.jsonl")
    assert counts == {"session": 1, "task": 0, "entry": 1}
    target = engram.AsyncMemory(memory_factory.url())
    try:
        assert await target.import_(tmp_path / "dump.jsonl") == counts
        assert await target.get("k") == await async_memory.get("k")
    finally:
        await target.close()


async def test_async_context_manager(memory_factory):
    url = memory_factory.url()
    async with engram.AsyncMemory(url) as memory:
        await memory.store("k", "v")
        assert (await memory.get("k")).content == "v"


def test_every_public_memory_method_has_an_async_twin():
    sync_methods = {
        name
        for name, member in inspect.getmembers(engram.Memory, inspect.isfunction)
        if not name.startswith("_") and name != "close"
    }
    for name in sync_methods:
        twin = getattr(engram.AsyncMemory, name, None)
        assert twin is not None, f"AsyncMemory lacks {name}"
        assert inspect.iscoroutinefunction(twin), f"AsyncMemory.{name} is not async"
        assert inspect.signature(twin) == inspect.signature(getattr(engram.Memory, name)), name
    assert inspect.iscoroutinefunction(engram.AsyncMemory.close)


def test_async_memory_is_usable_from_plain_asyncio_run(memory_factory):
    url = memory_factory.url()

    async def main() -> str:
        async with engram.AsyncMemory(url) as memory:
            await memory.store("k", "from asyncio.run")
            return (await memory.get("k")).content

    started = time.monotonic()
    assert asyncio.run(main()) == "from asyncio.run"
    assert time.monotonic() - started < 10
