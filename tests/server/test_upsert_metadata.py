"""Upsert keeps what the caller did not send, over REST and MCP: no metadata keeps it, {} clears it."""

from __future__ import annotations

from mcp.client import Client

from engram import Memory
from engram.server.mcp import Target, build_mcp_server

from .conftest import World

API = "/api/v1"


def test_rest_store_keeps_metadata_left_out_and_clears_empty(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    first = c.post(f"{API}/memories", headers=h, json={"key": "k", "content": "one", "metadata": {"v": 1}}).json()
    kept = c.post(f"{API}/memories", headers=h, json={"key": "k", "content": "two"})
    assert kept.status_code == 201
    assert (kept.json()["id"], kept.json()["metadata"]) == (first["id"], {"v": 1})
    null = c.post(f"{API}/memories", headers=h, json={"key": "k", "content": "three", "metadata": None}).json()
    assert null["metadata"] == {"v": 1}
    cleared = c.post(f"{API}/memories", headers=h, json={"key": "k", "content": "four", "metadata": {}}).json()
    assert cleared["metadata"] == {}
    assert c.get(f"{API}/memories/default/k", headers=h).json()["metadata"] == {}


def test_rest_store_many_keeps_metadata_of_items_without_it(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    items = [{"key": "a", "content": "1", "metadata": {"x": "a"}}, {"key": "b", "content": "1", "metadata": {"x": "b"}}]
    assert c.post(f"{API}/memories/batch", headers=h, json={"items": items, "namespace": "ns"}).status_code == 200
    again = [{"key": "a", "content": "2"}, {"key": "b", "content": "2", "metadata": {}}]
    assert c.post(f"{API}/memories/batch", headers=h, json={"items": again, "namespace": "ns"}).status_code == 200
    assert c.get(f"{API}/memories/ns/a", headers=h).json()["metadata"] == {"x": "a"}
    assert c.get(f"{API}/memories/ns/b", headers=h).json()["metadata"] == {}


async def test_mcp_store_keeps_metadata_left_out_and_clears_empty() -> None:
    with Memory("memory://") as memory:
        async with Client(build_mcp_server(lambda ctx: Target(memory))) as client:
            await client.call_tool("memory_store", {"key": "k", "content": "one", "metadata": {"v": 1}})
            kept = await client.call_tool("memory_store", {"key": "k", "content": "two"})
            assert kept.structured_content["metadata"] == {"v": 1}
            cleared = await client.call_tool("memory_store", {"key": "k", "content": "three", "metadata": {}})
            assert cleared.structured_content["metadata"] == {}
        assert memory.get("k").metadata == {}


def test_rest_store_and_store_many_take_a_context(world: World) -> None:
    """The context reaches the library (its limit is the library's, InvalidInput), the content stays as given."""
    c, h = world.client, world.headers("member_a")
    one = c.post(f"{API}/memories", headers=h, json={"key": "k", "content": "Yes!", "context": "Did you adopt a dog?"})
    assert one.status_code == 201 and one.json()["content"] == "Yes!"
    items = [{"key": "a", "content": "Did you adopt a dog?"}, {"key": "b", "content": "Yes!", "context": "May 2023"}]
    body = {"items": items, "namespace": "ns", "context_window": 2}
    assert c.post(f"{API}/memories/batch", headers=h, json=body).json() == {"stored": 2}
    assert c.get(f"{API}/memories/ns/b", headers=h).json()["content"] == "Yes!"
    too_long = c.post(f"{API}/memories", headers=h, json={"key": "x", "content": "v", "context": "c" * 20_000})
    assert too_long.status_code == 422 and "context is 20000 characters" in too_long.text
    window = c.post(f"{API}/memories/batch", headers=h, json={**body, "context_window": 99})
    assert window.status_code == 422
    assert c.get(f"{API}/memories/default/x", headers=h).status_code == 404
