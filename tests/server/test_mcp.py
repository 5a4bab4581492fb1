"""The MCP server driven by the SDK's own client, over stdio and over streamable HTTP."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx2
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from engram import Memory
from engram.server.mcp import TOOL_DESCRIPTIONS, Target, build_mcp_server
from engram.stores.control_base import TransactionQuery

from .conftest import CANARY, CANARY_USER, LiveServer, World

SNAPSHOT = Path(__file__).parent / "snapshots" / "mcp_tools.json"
TOOLS = {
    "memory_store", "memory_search", "memory_get", "memory_list", "memory_delete", "memory_namespaces",
    "session_start", "session_end", "session_active", "task_create", "task_update", "task_list",
    "chat_add_message", "chat_history", "chat_search", "chat_summary", "user_profile",
    "checkpoint_save", "checkpoint_resume", "checkpoint_list",
    "sessions_list", "session_delete", "session_metadata", "session_update",
    "run_start", "run_pause", "run_resume", "run_finish", "runs_resumable",
    "blob_put", "blob_get", "blob_list", "blob_delete",
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
                                                     "metadata": {"kind": "preference"}, "context": "Profile of Alice"})
    assert not stored.is_error and stored.structured_content["key"] == "diet"
    assert stored.structured_content["context"] == "Profile of Alice"
    found = await client.call_tool("memory_search", {"query": "vegan", "namespace": "user:alice"})
    assert found.structured_content["count"] == 1
    hit = found.structured_content["results"][0]
    assert {"entry", "score", "match_type"} <= set(hit) and hit["entry"]["content"] == "Alice is vegan"
    got = await client.call_tool("memory_get", {"key": "diet", "namespace": "user:alice"})
    assert got.structured_content["id"] == stored.structured_content["id"]
    assert got.structured_content["context"] == "Profile of Alice" and hit["entry"]["context"] == "Profile of Alice"
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
    ended = (await client.call_tool("session_end", {"session_id": session["id"]})).structured_content
    assert ended["status"] == "ended"

    # Errors: MCP tool errors with the REST API's messages and error shape.
    missing = await client.call_tool("memory_get", {"key": "nope"})
    assert missing.is_error
    assert missing.content[0].text == "no entry 'nope' in namespace 'default'"
    assert missing.structured_content["error"]["type"] == "NotFound"
    again = await client.call_tool("session_end", {"session_id": session["id"]})
    assert again.is_error and again.structured_content["error"]["status"] == 409
    bad = await client.call_tool("memory_search", {"query": '"unclosed', "mode": "fts"})
    assert bad.is_error and bad.structured_content["error"]["type"] == "QuerySyntaxError"
    deleted = await client.call_tool("memory_delete", {"key": "diet", "namespace": "user:alice"})
    assert deleted.structured_content == {"deleted": True}
    await exercise_chat(client)


async def exercise_chat(client: Client) -> None:
    """Chat memory and checkpoints over any transport."""
    session = (await client.call_tool("session_start", {})).structured_content["id"]
    first = await client.call_tool("chat_add_message", {"session_id": session, "role": "user",
                                                        "content": "I live in Lisbon", "user_id": "alice"})
    assert not first.is_error and first.structured_content["role"] == "user"
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    await client.call_tool("chat_add_message", {"session_id": session, "role": "assistant", "content": "",
                                                "tool_calls": [call]})
    await client.call_tool("chat_add_message", {"session_id": session, "role": "tool", "content": "sunny",
                                                "tool_call_id": "call_1"})
    history = (await client.call_tool("chat_history", {"session_id": session})).structured_content["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool"] and history[1]["tool_calls"] == [call]
    later = (await client.call_tool("chat_history", {"session_id": session, "after": first.structured_content["id"],
                                                     "limit": 1})).structured_content["messages"]
    assert [m["content"] for m in later] == ["sunny"]
    found = (await client.call_tool("chat_search", {"query": "lisbon", "user_id": "alice"})).structured_content
    assert found["count"] == 1 and found["results"][0]["message"]["id"] == first.structured_content["id"]

    no_summary = await client.call_tool("chat_summary", {"session_id": session})
    assert no_summary.is_error and no_summary.content[0].text == f"session {session} has no summary yet"
    no_profile = await client.call_tool("user_profile", {"user_id": "alice"})
    assert no_profile.is_error and no_profile.structured_content["error"]["status"] == 404
    no_session = await client.call_tool("chat_history", {"session_id": "missing"})
    assert no_session.is_error and no_session.content[0].text == "session missing does not exist"
    bad_role = await client.call_tool("chat_add_message", {"session_id": session, "role": "robot", "content": "x"})
    assert bad_role.is_error

    saved = (await client.call_tool("checkpoint_save", {"session_id": session, "state": {"step": 3},
                                                        "run_id": "run-7"})).structured_content
    assert saved["status"] == "paused" and saved["state"] == {"step": 3}
    paused = (await client.call_tool("checkpoint_list", {"session_id": session, "status": "paused"})).structured_content
    assert [c["id"] for c in paused["checkpoints"]] == [saved["id"]]
    resumed = await client.call_tool("checkpoint_resume", {"id": saved["id"]})
    assert resumed.structured_content == {"id": saved["id"], "state": {"step": 3}}
    again = await client.call_tool("checkpoint_resume", {"id": saved["id"]})
    assert again.is_error and again.structured_content["error"]["type"] == "Conflict"
    assert again.content[0].text.startswith(f"checkpoint {saved['id']} was already resumed")
    left = (await client.call_tool("checkpoint_list", {"session_id": session, "status": "paused"})).structured_content
    assert left == {"checkpoints": []}


async def test_stdio(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mcp.db'}"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "engram.cli", "--db", url, "mcp"], env={"PYTHONUNBUFFERED": "1"}
    )
    async with Client(params, read_timeout_seconds=30) as client:
        await exercise(client)
    with Memory(url) as memory:  # the stdio server wrote to the store named by --db
        assert memory.stats().sessions == 2
        chat = [s.id for s in memory.sessions() if memory.history(s.id)]
        assert len(chat) == 1 and len(memory.history(chat[0])) == 3


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
        # Nor alpha's chat memory: its session, messages, profile and checkpoint do not exist for beta.
        assert (await client.call_tool("chat_search", {"query": CANARY})).structured_content["count"] == 0
        for name, args in [
            ("chat_history", {"session_id": world.ids["session"]}),
            ("chat_summary", {"session_id": world.ids["session"]}),
            ("user_profile", {"user_id": CANARY_USER}),
            ("checkpoint_list", {"session_id": world.ids["session"]}),
            ("checkpoint_resume", {"id": world.ids["checkpoint"]}),
        ]:
            denied = await client.call_tool(name, args)
            assert denied.is_error and denied.structured_content["error"]["status"] == 404, name
            assert CANARY not in str(denied.content) + str(denied.structured_content), name
        # Writing to alpha's session id starts a session of that id in beta, which alpha never sees (below).
        probe = await client.call_tool("chat_add_message", {"session_id": world.ids["session"], "role": "user",
                                                            "content": "probe"})
        assert not probe.is_error and CANARY not in str(probe.structured_content)
        probed = await client.call_tool("chat_history", {"session_id": world.ids["session"]})
        assert [m["content"] for m in probed.structured_content["messages"]] == ["probe"]
    async with http_client(live, world.keys["member_a"]) as client:
        found = await client.call_tool("memory_search", {"query": CANARY})
        assert found.structured_content["count"] == 1
        history = await client.call_tool("chat_history", {"session_id": world.ids["session"]})
        assert [m["id"] for m in history.structured_content["messages"]] == [world.ids["message"]]
        profile = (await client.call_tool("user_profile", {"user_id": CANARY_USER})).structured_content
        assert profile["traits"]["pet"]["source_message_ids"] == [world.ids["message"]]
        summary = (await client.call_tool("chat_summary", {"session_id": world.ids["session"]})).structured_content
        assert summary["message_count"] == 1
    # Writes over MCP are in the transaction log, under the key that made them.
    log = world.tenancy.control.transactions(TransactionQuery(operation="mcp.memory_store"), project="beta")
    assert log and log[0].outcome == "ok" and log[0].target == "user:alice/diet"
    resumes = world.tenancy.control.transactions(TransactionQuery(operation="mcp.checkpoint_resume"), project="beta")
    assert sorted((t.outcome, t.status) for t in resumes) == [("Conflict", 409), ("NotFound", 404), ("ok", 200)]
    saves = world.tenancy.control.transactions(TransactionQuery(operation="mcp.checkpoint_save"), project="beta")
    assert len(saves) == 1 and saves[0].target and saves[0].outcome == "ok"
    reads = world.tenancy.control.transactions(TransactionQuery(operation="mcp.chat_history"), project="beta")
    assert reads == []  # reads are not logged


async def test_http_refuses_bad_keys(live_world: tuple[World, LiveServer]) -> None:
    world, live = live_world
    async with httpx2.AsyncClient() as http:
        for who in ("none", "malformed", "unknown", "revoked", "expired"):
            r = await http.post(f"{live.url}/mcp", headers=world.headers(who), json={})
            assert r.status_code == 401, who
            assert r.json()["error"]["type"] == "AuthError"
