"""The MCP server driven by the SDK's own client, over stdio and over streamable HTTP."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from engram import Memory
from engram.server.mcp import TOOL_DESCRIPTIONS, Target, build_mcp_server

from .conftest import CANARY, LiveServer, World

SNAPSHOT = Path(__file__).parent / "snapshots" / "mcp_tools.json"
TOOLS = {
    "memory_store", "memory_search", "memory_get", "memory_list", "memory_delete", "memory_namespaces",
    "session_start", "session_end", "session_active", "task_create", "task_update", "task_list",
}


def tool_listing(tools) -> list[dict]:
    return [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in sorted(tools, key=lambda t: t.name)
    ]


async def test_tool_descriptions_match_the_snapshot() -> None:
    """Tool names, descriptions and arguments are an interface: change them on purpose, with the snapshot.

    Regenerate with UPDATE_SNAPSHOTS=1.
    """
    with Memory("memory://") as memory:
        server = build_mcp_server(lambda ctx: Target(memory))
        listing = tool_listing(await server.list_tools())
    assert {t["name"] for t in listing} == TOOLS == set(TOOL_DESCRIPTIONS)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(listing, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert listing == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


async def exercise(client: Client) -> None:
    """The same conversation over any transport."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert names == TOOLS

    stored = await client.call_tool("memory_store", {"key": "diet", "content": "Alice is vegan", "namespace": "user:alice",
                                                     "metadata": {"kind": "preference"}})
    assert not stored.is_error and stored.structured_content["key"] == "diet"
    found = await client.call_tool("memory_search", {"query": "vegan", "namespace": "user:alice"})
    assert found.structured_content["count"] == 1
    hit = found.structured_content["results"][0]
    assert {"entry", "score", "match_type"} <= set(hit) and hit["entry"]["content"] == "Alice is vegan"
    got = await client.call_tool("memory_get", {"key": "diet", "namespace": "user:alice"})
    assert got.structured_content["id"] == stored.structured_content["id"]
    listed = await client.call_tool("memory_list", {"namespace": "user:alice"})
    assert [e["key"] for e in listed.structured_content["entries"]] == ["diet"]
    assert "user:alice" in (await client.call_tool("memory_namespaces", {})).structured_content["namespaces"]

    session = (await client.call_tool("session_start", {"metadata": {"agent": "test"}})).structured_content
    active = (await client.call_tool("session_active", {})).structured_content["sessions"]
    assert session["id"] in [s["id"] for s in active]
    task = (await client.call_tool("task_create", {"agent_type": "planner", "input": {"goal": "trip"},
                                                   "session_id": session["id"]})).structured_content
    done = (await client.call_tool("task_update", {"id": task["id"], "status": "completed",
                                                   "output": {"ok": True}})).structured_content
    assert done["status"] == "completed" and done["completed_at"]
    tasks = (await client.call_tool("task_list", {"session_id": session["id"]})).structured_content["tasks"]
    assert [t["id"] for t in tasks] == [task["id"]]
    ended = (await client.call_tool("session_end", {"id": session["id"]})).structured_content
    assert ended["status"] == "ended"

    # Errors: MCP tool errors with the REST API's messages and error shape.
    missing = await client.call_tool("memory_get", {"key": "nope"})
    assert missing.is_error
    assert missing.content[0].text == "no entry 'nope' in namespace 'default'"
    assert missing.structured_content["error"]["type"] == "NotFound"
    again = await client.call_tool("session_end", {"id": session["id"]})
    assert again.is_error and again.structured_content["error"]["status"] == 409
    bad = await client.call_tool("memory_search", {"query": '"unclosed', "mode": "fts"})
    assert bad.is_error and bad.structured_content["error"]["type"] == "QuerySyntaxError"
    deleted = await client.call_tool("memory_delete", {"key": "diet", "namespace": "user:alice"})
    assert deleted.structured_content == {"deleted": True}


async def test_stdio(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mcp.db'}"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "engram.cli", "--db", url, "mcp"], env={"PYTHONUNBUFFERED": "1"}
    )
    async with Client(params, read_timeout_seconds=30) as client:
        await exercise(client)
    with Memory(url) as memory:  # the stdio server wrote to the store named by --db
        assert memory.stats().sessions == 1


def http_client(live: LiveServer, key: str) -> Client:
    transport = streamable_http_client(
        f"{live.url}/mcp", http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    )
    return Client(transport, read_timeout_seconds=30)


async def test_streamable_http_with_api_keys(live_world: tuple[World, LiveServer]) -> None:
    world, live = live_world
    async with http_client(live, world.keys["member_b"]) as client:
        await exercise(client)
        # Project beta's key sees nothing of alpha.
        found = await client.call_tool("memory_search", {"query": CANARY})
        assert found.structured_content["count"] == 0
        got = await client.call_tool("memory_get", {"key": "secret-key", "namespace": "secret-ns"})
        assert got.is_error and CANARY not in got.content[0].text
    async with http_client(live, world.keys["member_a"]) as client:
        found = await client.call_tool("memory_search", {"query": CANARY})
        assert found.structured_content["count"] == 1
    # Writes over MCP are in the transaction log, under the key that made them.
    log = world.tenancy.control.transactions(project="beta", operation="mcp.memory_store")
    assert log and log[0].outcome == "ok" and log[0].target == "user:alice/diet"


async def test_http_refuses_bad_keys(live_world: tuple[World, LiveServer]) -> None:
    world, live = live_world
    async with httpx2.AsyncClient() as http:
        for who in ("none", "malformed", "unknown", "revoked", "expired"):
            r = await http.post(f"{live.url}/mcp", headers=world.headers(who), json={})
            assert r.status_code == 401, who
            assert r.json()["error"]["type"] == "AuthError"
