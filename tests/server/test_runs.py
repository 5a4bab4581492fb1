"""Runs over REST and MCP (issue 16): start, pause, resume once (then 409 / a Conflict tool error),
finish, list the resumable ones."""

from __future__ import annotations

from .conftest import World, mcp_connected

API = "/api/v1"


def test_rest_run_lifecycle(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    r = c.post(f"{API}/sessions/thread-9/runs", headers=h, json={"user_id": "ana", "agent_id": "planner"})
    assert r.status_code == 201, r.text
    run = r.json()
    assert (run["status"], run["session_id"], run["user_id"]) == ("running", "thread-9", "ana")
    paused = c.post(f"{API}/runs/{run['id']}/pause", headers=h, json={"state": {"step": 2}})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    listed = c.get(f"{API}/runs", headers=h, params={"resumable": "true", "user_id": "ana"}).json()
    assert [x["id"] for x in listed] == [run["id"]]
    resumed = c.post(f"{API}/runs/{run['id']}/resume", headers=h)
    assert resumed.status_code == 200 and resumed.json()["state"] == {"step": 2}
    again = c.post(f"{API}/runs/{run['id']}/resume", headers=h)
    assert again.status_code == 409 and again.json()["error"]["type"] == "Conflict"
    done = c.post(f"{API}/runs/{run['id']}/finish", headers=h, json={"status": "completed"})
    assert done.json()["status"] == "completed"
    assert c.get(f"{API}/runs/{run['id']}", headers=h).json()["status"] == "completed"
    assert c.get(f"{API}/runs/nope", headers=h).status_code == 404
    assert c.post(f"{API}/runs/{run['id']}/finish", headers=h, json={"status": "later"}).status_code == 422
    # Another project never sees it.
    assert c.get(f"{API}/runs/{run['id']}", headers=world.headers("member_b")).status_code == 404


async def test_mcp_run_lifecycle() -> None:
    async with mcp_connected() as (mcp, memory):
        started = await mcp.call_tool("run_start", {"session_id": "s", "user_id": "ana"})
        run_id = started.structured_content["id"]
        paused = await mcp.call_tool("run_pause", {"run_id": run_id, "state": {"waiting_for": "approval"}})
        assert paused.structured_content["status"] == "paused"
        listed = await mcp.call_tool("runs_resumable", {"user_id": "ana"})
        assert [r["id"] for r in listed.structured_content["runs"]] == [run_id]
        resumed = await mcp.call_tool("run_resume", {"run_id": run_id})
        assert resumed.structured_content["state"] == {"waiting_for": "approval"}
        again = await mcp.call_tool("run_resume", {"run_id": run_id})
        assert again.is_error and again.structured_content["error"]["type"] == "Conflict"
        failed = await mcp.call_tool("run_finish", {"run_id": run_id, "status": "error", "state": {"at": 3}})
        assert failed.structured_content["status"] == "error"
        assert memory.run_resume(run_id).state == {"at": 3}


def test_resumable_runs_of_one_status_page_over_the_matches(world: World) -> None:
    """status with resumable=true filters before limit/offset, so a page is never cut short."""
    c, h = world.client, world.headers("member_a")

    def run_in(status: str) -> str:
        run = c.post(f"{API}/sessions/paging/runs", headers=h, json={"user_id": "pat"}).json()
        if status == "paused":
            c.post(f"{API}/runs/{run['id']}/pause", headers=h, json={"state": {}})
        else:
            c.post(f"{API}/runs/{run['id']}/finish", headers=h, json={"status": status})
        return run["id"]

    paused = run_in("paused")
    for _ in range(3):  # updated later, so listed before the paused one
        run_in("cancelled")
    query = {"resumable": "true", "user_id": "pat", "limit": 1}
    assert [x["id"] for x in c.get(f"{API}/runs", headers=h, params={**query, "status": "paused"}).json()] == [paused]
    assert c.get(f"{API}/runs", headers=h, params={**query, "status": "completed"}).json() == []
    assert len(c.get(f"{API}/runs", headers=h, params={**query, "limit": 10}).json()) == 4
