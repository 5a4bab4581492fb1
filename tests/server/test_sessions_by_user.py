"""Sessions by user and agent, session metadata and session delete over REST and MCP (issue 16)."""

from __future__ import annotations

from .conftest import CANARY_USER, World, mcp_connected

API = "/api/v1"


def test_rest_sessions_by_user_agent_and_sort(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    r = c.post(f"{API}/sessions", headers=h, json={"user_id": "ana", "agent_id": "planner"})
    assert r.status_code == 201 and (r.json()["user_id"], r.json()["agent_id"]) == ("ana", "planner")
    c.post(f"{API}/sessions/chat-ana/messages", headers=h, json={"role": "user", "content": "hi", "user_id": "ana"})
    listed = c.get(f"{API}/sessions", headers=h, params={"user_id": "ana"}).json()
    assert [s["id"] for s in listed] == ["chat-ana", r.json()["id"]]
    oldest = c.get(f"{API}/sessions", headers=h, params={"user_id": "ana", "sort": "oldest"}).json()
    assert [s["id"] for s in oldest] == [r.json()["id"], "chat-ana"]
    assert [s["id"] for s in c.get(f"{API}/sessions", headers=h, params={"agent_id": "planner"}).json()] == [r.json()["id"]]
    bad = c.get(f"{API}/sessions", headers=h, params={"sort": "sideways"})
    assert bad.status_code == 422 and "sort" in bad.text


def test_rest_session_metadata_and_delete(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    sid = world.ids["session"]
    assert c.get(f"{API}/sessions/{sid}/metadata", headers=h).json() == {"note": "zebracanary"}
    r = c.patch(f"{API}/sessions/{sid}/metadata", headers=h, json={"metadata": {"note": None, "lang": "no"}})
    assert r.status_code == 200 and r.json()["metadata"] == {"lang": "no"}
    r = c.patch(f"{API}/sessions/{sid}/metadata", headers=h, json={"metadata": {"x": 1}, "replace": True})
    assert r.json()["metadata"] == {"x": 1}
    assert c.get(f"{API}/sessions/missing/metadata", headers=h).status_code == 404
    assert c.patch(f"{API}/sessions/{sid}/metadata", headers=h, json={"metadata": "no"}).status_code == 422

    assert c.delete(f"{API}/sessions/{sid}", headers=h).status_code == 204
    assert c.get(f"{API}/sessions/{sid}", headers=h).status_code == 404
    assert c.get(f"{API}/sessions/{sid}/messages", headers=h).status_code == 404
    assert c.get(f"{API}/tasks/{world.ids['task']}", headers=h).status_code == 404
    assert c.get(f"{API}/checkpoints/{world.ids['checkpoint']}", headers=h).status_code == 404
    assert c.get(f"{API}/users/{CANARY_USER}/profile", headers=h).status_code == 200  # the user's stays
    assert c.delete(f"{API}/sessions/{sid}", headers=h).status_code == 404


async def test_mcp_sessions_by_user_metadata_and_delete() -> None:
    async with mcp_connected() as (mcp, memory):
        memory.add_message("a", "user", "hi", user_id="ana", agent_id="helper")
        memory.add_message("b", "user", "hi", user_id="bo")
        listed = await mcp.call_tool("sessions_list", {"user_id": "ana"})
        assert [s["id"] for s in listed.structured_content["sessions"]] == ["a"]
        assert listed.structured_content["sessions"][0]["agent_id"] == "helper"
        both = await mcp.call_tool("sessions_list", {"sort": "oldest"})
        assert [s["id"] for s in both.structured_content["sessions"]] == ["a", "b"]
        updated = await mcp.call_tool("session_update", {"session_id": "a", "metadata": {"k": "v"}})
        assert updated.structured_content["metadata"] == {"k": "v"}
        got = await mcp.call_tool("session_metadata", {"session_id": "a"})
        assert got.structured_content == {"k": "v"}
        deleted = await mcp.call_tool("session_delete", {"session_id": "a"})
        assert deleted.structured_content == {"deleted": True}
        assert memory.session_get("a") is None
        again = await mcp.call_tool("session_delete", {"session_id": "a"})
        assert again.is_error and again.structured_content["error"]["type"] == "NotFound"
        bad = await mcp.call_tool("sessions_list", {"sort": "sideways"})
        assert bad.is_error and bad.structured_content["error"]["status"] == 422


async def test_mcp_session_start_takes_user_and_agent() -> None:
    async with mcp_connected() as (mcp, memory):
        started = await mcp.call_tool("session_start", {"user_id": "ana", "agent_id": "planner"})
        session = memory.session_get(started.structured_content["id"])
        assert (session.user_id, session.agent_id) == ("ana", "planner")
