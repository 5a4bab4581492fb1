"""Chat histories over REST and MCP: a write starts an unknown session, a read of one is NotFound,
a bad new session id is InvalidInput, and MCP argument errors come back in the one tool-error shape."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import World, mcp_connected

API = "/api/v1"


def error_of(response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "status", "message", "details"}
    return body["error"]


# -- REST -------------------------------------------------------------------------------------
def test_rest_write_to_a_new_session_id_starts_it(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    r = c.post(f"{API}/sessions/thread-1/messages", headers=h, json={"role": "user", "content": "hi"})
    assert r.status_code == 201, r.text
    assert r.json()["session_id"] == "thread-1"
    session = c.get(f"{API}/sessions/thread-1", headers=h).json()
    assert (session["id"], session["status"]) == ("thread-1", "active")
    r = c.post(f"{API}/sessions/thread-2/messages/batch", headers=h,
               json={"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    assert r.status_code == 201, r.text
    assert [m["content"] for m in c.get(f"{API}/sessions/thread-2/messages", headers=h).json()] == ["a", "b"]


@pytest.mark.parametrize("path", ["messages", "summary", "checkpoints"])
def test_rest_reading_an_unknown_session_is_404(world: World, path: str) -> None:
    r = world.client.get(f"{API}/sessions/never-seen/{path}", headers=world.headers("member_a"))
    assert r.status_code == 404
    assert error_of(r) == {"type": "NotFound", "status": 404, "message": "session never-seen does not exist",
                           "details": None}


def test_rest_deleting_the_history_of_an_unknown_session_is_404(world: World) -> None:
    r = world.client.delete(f"{API}/sessions/never-seen/messages", headers=world.headers("member_a"))
    assert (r.status_code, error_of(r)["message"]) == (404, "session never-seen does not exist")


@pytest.mark.parametrize("bad", ["a%20b", "-dash", "x" * 129, "caf%C3%A9", "a%3Fb"])
def test_rest_bad_new_session_id_is_422_and_starts_nothing(world: World, bad: str) -> None:
    c, h = world.client, world.headers("member_a")
    before = c.get(f"{API}/stats", headers=h).json()["sessions"]
    r = c.post(f"{API}/sessions/{bad}/messages", headers=h, json={"role": "user", "content": "x"})
    assert r.status_code == 422, r.text
    assert error_of(r)["type"] == "InvalidInput" and "letters, digits" in error_of(r)["message"]
    assert c.get(f"{API}/stats", headers=h).json()["sessions"] == before


# -- MCP --------------------------------------------------------------------------------------
def tool_error(result) -> dict[str, Any]:
    assert result.is_error
    error = result.structured_content["error"]
    assert set(error) == {"type", "status", "message", "details"}
    assert result.content[0].text == error["message"]
    return error


async def test_mcp_write_to_a_new_session_id_starts_it() -> None:
    async with mcp_connected() as (mcp, _):
        added = await mcp.call_tool("chat_add_message", {"session_id": "thread-1", "role": "user", "content": "hi"})
        assert not added.is_error and added.structured_content["session_id"] == "thread-1"
        history = await mcp.call_tool("chat_history", {"session_id": "thread-1"})
        assert [m["content"] for m in history.structured_content["messages"]] == ["hi"]
        ended = await mcp.call_tool("session_end", {"session_id": "thread-1"})
        assert ended.structured_content["status"] == "ended"


@pytest.mark.parametrize("tool", ["chat_history", "chat_summary", "checkpoint_list"])
async def test_mcp_reading_an_unknown_session_is_the_structured_not_found(tool: str) -> None:
    async with mcp_connected() as (mcp, _):
        error = tool_error(await mcp.call_tool(tool, {"session_id": "never-seen"}))
        assert (error["type"], error["status"], error["message"]) == ("NotFound", 404, "session never-seen does not exist")


async def test_mcp_bad_new_session_id_is_invalid_input() -> None:
    async with mcp_connected() as (mcp, _):
        error = tool_error(await mcp.call_tool("chat_add_message", {"session_id": "a b", "role": "user", "content": "x"}))
        assert (error["type"], error["status"]) == ("InvalidInput", 422)


async def test_every_tool_names_the_session_argument_session_id() -> None:
    async with mcp_connected() as (mcp, _):
        for tool in (await mcp.list_tools()).tools:
            names = set(tool.input_schema.get("properties", {}))
            assert not names & {"session", "sid", "sessionId"}, tool.name
            if tool.name.startswith("session_") and tool.name != "session_start" and tool.name != "session_active":
                assert "session_id" in names and "id" not in names, tool.name


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("chat_history", {}, "session_id"),  # missing
        ("chat_history", {"session_id": "s", "limit": "many"}, "limit"),  # wrong type
        ("session_end", {"id": "s"}, "session_id"),  # the old argument name
        ("memory_store", {"key": "k", "content": ["not", "text"]}, "content"),
        ("chat_add_message", {"session_id": "s", "role": "robot", "content": "x"}, "role"),
    ],
)
async def test_mcp_argument_errors_come_back_in_the_one_tool_error_shape(tool, arguments, field) -> None:
    async with mcp_connected() as (mcp, _):
        error = tool_error(await mcp.call_tool(tool, arguments))
        assert (error["type"], error["status"]) == ("InvalidInput", 422)
        assert error["message"].startswith(f"invalid arguments for {tool}: ") and field in error["message"]
        assert "Traceback" not in error["message"] and "pydantic" not in error["message"]


async def test_mcp_argument_errors_do_not_echo_the_values() -> None:
    async with mcp_connected() as (mcp, _):
        secret = "sk-very-secret-value"
        error = tool_error(await mcp.call_tool("chat_history", {"session_id": "s", "limit": secret}))
        assert secret not in error["message"]
