"""REST routes of conversation memory: messages, summaries, profiles, checkpoints, retention.

Happy paths, bad input answered in the one error shape, the transaction log,
and isolation between projects (alpha holds canary chat data, see conftest).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from .conftest import CANARY, CANARY_USER, World

API = "/api/v1"


def assert_error(response, status: int, type_: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "status", "message", "details"}, body
    assert body["error"]["status"] == status and body["error"]["message"]
    if type_ is not None:
        assert body["error"]["type"] == type_, body
    return body["error"]


def new_session(world: World, who: str) -> str:
    r = world.client.post(f"{API}/sessions", headers=world.headers(who))
    assert r.status_code == 201
    return r.json()["id"]


def test_messages_add_history_search_delete(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    sid = new_session(world, "member_a")
    first = c.post(f"{API}/sessions/{sid}/messages", headers=h,
                   json={"role": "user", "content": "I moved to Lisbon", "user_id": "alice", "metadata": {"lang": "en"},
                         "attachments": [{"uri": "blob://photos/1", "media_type": "image/png"}]})
    assert first.status_code == 201, first.text
    first = first.json()
    assert first["session_id"] == sid and first["metadata"] == {"lang": "en"}
    assert first["attachments"][0]["uri"] == "blob://photos/1"
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Lisbon\"}"}}
    batch = c.post(f"{API}/sessions/{sid}/messages/batch", headers=h, json={"messages": [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It is sunny in Lisbon", "agent_id": "helper"},
    ]})
    assert batch.status_code == 201, batch.text
    assert [m["role"] for m in batch.json()] == ["assistant", "tool", "assistant"]
    assert batch.json()[0]["content"] == "" and batch.json()[0]["tool_calls"] == [call]

    def history(**params: Any) -> list[str]:
        r = c.get(f"{API}/sessions/{sid}/messages", headers=h, params=params)
        assert r.status_code == 200, r.text
        return [m["content"] for m in r.json()]

    assert history() == ["I moved to Lisbon", "", "sunny", "It is sunny in Lisbon"]
    assert history(limit=2) == ["sunny", "It is sunny in Lisbon"]
    assert history(after=first["id"], limit=1) == ["It is sunny in Lisbon"]
    assert history(before=batch.json()[1]["id"]) == ["I moved to Lisbon", ""]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert history(before=future, limit=1) == ["It is sunny in Lisbon"]
    assert history(after=future) == []
    assert history(after="2000-01-01") == history()

    found = c.post(f"{API}/messages/search", headers=h, json={"query": "lisbon", "user_id": "alice"}).json()
    assert found["count"] == 1 and found["results"][0]["message"]["id"] == first["id"]
    assert found["results"][0]["match_type"] == "fts" and found["results"][0]["score"] > 0
    in_session = c.post(f"{API}/messages/search", headers=h, json={"query": "lisbon", "session_id": sid}).json()
    assert in_session["count"] == 2
    words = c.post(f"{API}/messages/search", headers=h, json={"query": "lisbon", "mode": "fts", "threshold": 0.5}).json()
    assert words["count"] == 2 and {r["match_type"] for r in words["results"]} == {"fts"}

    assert c.delete(f"{API}/sessions/{sid}/messages", headers=h).json() == {"deleted": 4}
    assert history() == []
    assert c.delete(f"{API}/sessions/{sid}/messages", headers=h).json() == {"deleted": 0}


def test_bad_input_is_a_4xx_in_the_one_shape(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    sid = new_session(world, "member_a")
    msgs = f"{API}/sessions/{sid}/messages"
    assert_error(c.post(msgs, headers=h, json={"role": "robot", "content": "x"}), 422, "InvalidInput")
    assert_error(c.post(msgs, headers=h, json={"role": "user", "content": "x", "extra": 1}), 422)
    assert_error(c.post(msgs, headers=h, json={"role": "user"}), 422)  # only tool-calling assistants may omit content
    error = assert_error(c.post(msgs, headers=h, json={"role": "user", "content": "x", "tool_calls": [{"id": "c"}]}), 422)
    assert "assistant" in error["message"]
    assert_error(c.post(msgs, headers=h, json={"role": "user", "content": "x" * (1024 * 1024 + 1)}), 413, "ContentTooLarge")
    nan_metadata = json.dumps({"role": "user", "content": "x", "metadata": {"a": float("nan")}})
    assert_error(c.post(msgs, headers={**h, "Content-Type": "application/json"}, content=nan_metadata), 422)
    # A new session id must be a clean one (writing to an unknown id starts that session: test_chat_sessions.py).
    assert_error(c.post(f"{API}/sessions/bad%20id/messages", headers=h, json={"role": "user", "content": "x"}), 422,
                 "InvalidInput")
    assert_error(c.post(f"{msgs}/batch", headers=h, json={"messages": []}), 422)
    bad_batch = {"messages": [{"role": "user", "content": "kept?"}, {"role": "tool", "content": "x", "tool_calls": []}]}
    error = assert_error(c.post(f"{msgs}/batch", headers=h, json=bad_batch), 422)
    assert error["message"].startswith("message 1:")
    assert c.get(msgs, headers=h).json() == []  # all or nothing

    assert_error(c.get(msgs, headers=h, params={"limit": 0}), 422)
    assert_error(c.get(msgs, headers=h, params={"before": "2026-13-45"}), 422, "InvalidInput")
    assert_error(c.get(msgs, headers=h, params={"after": "no-such-message"}), 404, "NotFound")
    assert_error(c.get(f"{API}/sessions/missing/messages", headers=h), 404, "NotFound")
    assert_error(c.delete(f"{API}/sessions/missing/messages", headers=h), 404)
    assert_error(c.post(f"{API}/messages/search", headers=h, json={"query": '"unclosed'}), 400, "QuerySyntaxError")
    assert_error(c.post(f"{API}/messages/search", headers=h, json={"query": "a", "limit": 0}), 422)
    assert_error(c.post(f"{API}/messages/search", headers=h, json={"query": "a", "mode": "nearest"}), 422)
    no_embedder = c.post(f"{API}/messages/search", headers=h, json={"query": "a", "mode": "vector"})
    assert_error(no_embedder, 422, "InvalidInput")
    nan_state = c.post(f"{API}/sessions/{sid}/checkpoints", headers={**h, "Content-Type": "application/json"},
                       content='{"state": NaN}')
    assert_error(nan_state, 422, "InvalidInput")
    assert_error(c.post(f"{API}/sessions/{sid}/checkpoints", headers=h, json={"state": 1, "status": "done"}), 422)
    assert_error(c.get(f"{API}/sessions/{sid}/checkpoints", headers=h, params={"status": "done"}), 422)


def test_summary_and_profile(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    sid = new_session(world, "member_a")
    error = assert_error(c.get(f"{API}/sessions/{sid}/summary", headers=h), 404)
    assert error["message"] == f"session {sid} has no summary yet"
    assert assert_error(c.get(f"{API}/sessions/missing/summary", headers=h), 404)["message"] == "session missing does not exist"
    summary = c.get(f"{API}/sessions/{world.ids['session']}/summary", headers=h).json()
    assert summary["content"] == f"the user is {CANARY}" and summary["message_count"] == 1

    profile = c.get(f"{API}/users/{CANARY_USER}/profile", headers=h).json()
    assert profile["traits"]["pet"] == {**profile["traits"]["pet"], "value": CANARY,
                                        "source_message_ids": [world.ids["message"]]}
    assert c.delete(f"{API}/users/{CANARY_USER}/profile", headers=h).status_code == 204
    assert assert_error(c.get(f"{API}/users/{CANARY_USER}/profile", headers=h), 404)["message"] == (
        f"no profile for user {CANARY_USER!r}")
    assert_error(c.delete(f"{API}/users/{CANARY_USER}/profile", headers=h), 404)


def test_checkpoints_resume_once(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    sid = new_session(world, "member_a")
    saved = c.post(f"{API}/sessions/{sid}/checkpoints", headers=h,
                   json={"state": {"step": 3, "waiting_for": "approval"}, "run_id": "run-9"})
    assert saved.status_code == 201, saved.text
    cp = saved.json()
    assert cp["status"] == "paused" and cp["run_id"] == "run-9" and cp["resumed_at"] is None
    other = c.post(f"{API}/sessions/{sid}/checkpoints", headers=h, json={"state": None}).json()
    assert c.get(f"{API}/checkpoints/{cp['id']}", headers=h).json() == cp
    listed = c.get(f"{API}/sessions/{sid}/checkpoints", headers=h).json()
    assert {x["id"] for x in listed} == {cp["id"], other["id"]}

    resumed = c.post(f"{API}/checkpoints/{cp['id']}/resume", headers=h)
    assert resumed.status_code == 200 and resumed.json() == {"id": cp["id"], "state": {"step": 3, "waiting_for": "approval"}}
    error = assert_error(c.post(f"{API}/checkpoints/{cp['id']}/resume", headers=h), 409, "Conflict")
    assert "already resumed" in error["message"]
    after = c.get(f"{API}/checkpoints/{cp['id']}", headers=h).json()
    assert after["status"] == "resumed" and after["resumed_at"]
    paused = c.get(f"{API}/sessions/{sid}/checkpoints", headers=h, params={"status": "paused"}).json()
    assert [x["id"] for x in paused] == [other["id"]]

    assert c.delete(f"{API}/checkpoints/{cp['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{API}/checkpoints/{cp['id']}", headers=h), 404)
    assert_error(c.delete(f"{API}/checkpoints/{cp['id']}", headers=h), 404)
    assert_error(c.post(f"{API}/checkpoints/{cp['id']}/resume", headers=h), 404)
    assert_error(c.post(f"{API}/sessions/missing/checkpoints", headers=h, json={"state": 1}), 404)
    assert_error(c.get(f"{API}/sessions/missing/checkpoints", headers=h), 404)


def test_projects_do_not_share_chat_memory(world: World) -> None:
    c = world.client
    a, b = world.headers("member_a"), world.headers("member_b")
    sid_b = new_session(world, "member_b")
    mine = c.post(f"{API}/sessions/{sid_b}/messages", headers=b,
                  json={"role": "user", "content": "beta words only", "user_id": CANARY_USER}).json()
    cp_b = c.post(f"{API}/sessions/{sid_b}/checkpoints", headers=b, json={"state": {"beta": True}}).json()

    # Beta sees only its own message for the same user_id; alpha never sees beta's.
    found = c.post(f"{API}/messages/search", headers=b, json={"query": "beta OR " + CANARY, "user_id": CANARY_USER}).json()
    assert [r["message"]["id"] for r in found["results"]] == [mine["id"]]
    assert c.post(f"{API}/messages/search", headers=a, json={"query": "beta"}).json()["count"] == 0
    # Record ids of one project do not exist in the other, whatever the route.
    assert_error(c.get(f"{API}/sessions/{sid_b}/messages", headers=a), 404)
    assert_error(c.get(f"{API}/sessions/{sid_b}/messages", headers=b, params={"after": world.ids["message"]}), 404)
    assert_error(c.get(f"{API}/checkpoints/{cp_b['id']}", headers=a), 404)
    assert_error(c.post(f"{API}/checkpoints/{world.ids['checkpoint']}/resume", headers=b), 404)
    assert_error(c.delete(f"{API}/checkpoints/{world.ids['checkpoint']}", headers=b), 404)
    assert_error(c.get(f"{API}/users/{CANARY_USER}/profile", headers=b), 404)
    assert_error(c.delete(f"{API}/sessions/{world.ids['session']}/messages", headers=b), 404)
    # Alpha's records are untouched.
    assert c.get(f"{API}/checkpoints/{world.ids['checkpoint']}", headers=a).json()["status"] == "paused"
    assert [m["id"] for m in c.get(f"{API}/sessions/{world.ids['session']}/messages", headers=a).json()] == [
        world.ids["message"]]


def test_writes_are_logged_searches_are_not(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    sid = new_session(world, "member_a")
    assert c.post(f"{API}/sessions/{sid}/messages", headers=h, json={"role": "user", "content": "hi"}).status_code == 201
    assert c.post(f"{API}/messages/search", headers=h, json={"query": "hi"}).status_code == 200
    cp = c.post(f"{API}/sessions/{sid}/checkpoints", headers=h, json={"state": 1}).json()
    c.post(f"{API}/checkpoints/{cp['id']}/resume", headers=h)
    c.post(f"{API}/checkpoints/{cp['id']}/resume", headers=h)
    log = c.get(f"{API}/admin/transactions", params={"project": "alpha"}, headers=world.headers("admin_a")).json()
    ops = [(t["operation"], t["target"], t["outcome"], t["status"]) for t in reversed(log)]
    assert ops == [
        ("sessions.start", sid, "ok", 201),
        ("messages.add", sid, "ok", 201),
        ("checkpoints.save", f"{sid}/{cp['id']}", "ok", 201),
        ("checkpoints.resume", cp["id"], "ok", 200),
        ("checkpoints.resume", cp["id"], "Conflict", 409),
    ]


def test_prune_is_for_admins_and_has_a_dry_run(world: World) -> None:
    c, admin = world.client, world.headers("admin_a")
    sid = new_session(world, "admin_a")
    c.post(f"{API}/sessions/{sid}/messages/batch", headers=admin,
           json={"messages": [{"role": "user", "content": f"turn {i}"} for i in range(5)]})
    assert_error(c.post(f"{API}/prune", headers=world.headers("member_a"), json={"dry_run": True}), 403, "PermissionDenied")
    assert_error(c.post(f"{API}/prune", headers=admin, json={"older_than_days": -1}), 422)
    assert_error(c.post(f"{API}/prune", headers=admin, json={"keep_last_per_session": -1}), 422)
    assert_error(c.post(f"{API}/prune", headers=admin, json={"dry_run": "maybe"}), 422)
    nan = c.post(f"{API}/prune", headers={**admin, "Content-Type": "application/json"}, content='{"older_than_days": NaN}')
    assert_error(nan, 422)

    body = {"keep_last_per_session": 2, "session_id": sid}
    dry = c.post(f"{API}/prune", headers=admin, json={**body, "dry_run": True}).json()
    assert dry == {"expired_entries": 0, "messages": 3, "sessions": 0, "checkpoints": 0, "tasks": 0, "blobs": 0,
                   "dry_run": True}  # fmt: skip
    assert len(c.get(f"{API}/sessions/{sid}/messages", headers=admin).json()) == 5
    done = c.post(f"{API}/prune", headers=admin, json=body).json()
    assert done == {**dry, "dry_run": False}
    assert [m["content"] for m in c.get(f"{API}/sessions/{sid}/messages", headers=admin).json()] == ["turn 3", "turn 4"]
    assert c.post(f"{API}/prune", headers=admin).json()["messages"] == 0  # no body: expired entries only
    log = c.get(f"{API}/admin/transactions", params={"operation": "prune"}, headers=admin).json()
    assert [(t["outcome"], t["target"]) for t in reversed(log)] == [
        ("PermissionDenied", None), *[("InvalidInput", None)] * 4,
        ("ok", f"keep_last_per_session=2 session_id={sid} dry_run=True"),
        ("ok", f"keep_last_per_session=2 session_id={sid}"),
        ("ok", None),
    ]
