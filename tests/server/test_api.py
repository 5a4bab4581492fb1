"""REST behaviour beyond authorization: the transaction log, the CLI on the server's files, errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient

from engram.cli import cli
from engram.server.app import create_app
from engram.server.tenancy import Tenancy
from engram import load_settings

from .conftest import World


def test_writes_are_logged_and_pruned(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    assert c.post("/api/v1/memories", json={"key": "k", "content": "v", "namespace": "ns"}, headers=h).status_code == 201
    assert c.delete("/api/v1/memories/ns/missing", headers=h).status_code == 404
    assert c.post("/api/v1/search", json={"query": "v"}, headers=h).status_code == 200  # a read: not logged
    admin = world.headers("admin_a")
    log = c.get("/api/v1/admin/transactions", params={"project": "alpha"}, headers=admin).json()
    assert [(t["operation"], t["target"], t["outcome"], t["status"]) for t in log] == [
        ("memories.delete", "ns/missing", "NotFound", 404),
        ("memories.store", "ns/k", "ok", 201),  # the status sent, not a generic 200
    ]
    assert all(t["key_prefix"] and t["project"] == "alpha" and t["duration_ms"] >= 0 for t in log)
    only = c.get("/api/v1/admin/transactions", params={"outcome": "NotFound"}, headers=admin).json()
    assert [t["operation"] for t in only] == ["memories.delete"]
    assert c.get("/api/v1/admin/transactions", params={"since": "0.5"}, headers=admin).status_code == 422
    server = world.headers("server_admin")  # pruning the whole log is the server administrator's
    assert c.delete("/api/v1/admin/transactions", params={"older_than_days": 1}, headers=server).json() == {"pruned": 0}
    assert c.delete("/api/v1/admin/transactions", params={"older_than_days": 0}, headers=server).json()["pruned"] >= 2


def test_cli_keys_work_against_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    run = CliRunner()
    assert run.invoke(cli, ["--db", url, "project", "create", "research", "--json"]).exit_code == 0
    created = run.invoke(cli, ["--db", url, "key", "create", "--project", "research", "--role", "member",
                               "--expires-in", "30", "--json"])
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)["key"]
    with Tenancy(load_settings(database_url=url)) as tenancy, TestClient(create_app(tenancy=tenancy)) as client:
        h = {"Authorization": f"Bearer {key}"}
        assert client.post("/api/v1/memories", json={"key": "a", "content": "b"}, headers=h).status_code == 201
        listed = run.invoke(cli, ["--db", url, "key", "list", "--json"])
        assert key not in listed.output and json.loads(created.output)["prefix"] in listed.output
        assert run.invoke(cli, ["--db", url, "key", "revoke", json.loads(created.output)["prefix"]]).exit_code == 0
        assert client.get("/api/v1/memories", headers=h).status_code == 401
    assert run.invoke(cli, ["--db", url, "key", "create", "--project", "nope"]).exit_code == 1
    assert run.invoke(cli, ["--db", url, "project", "create", "bad name"]).exit_code == 2


def test_bad_input_is_never_a_server_error(world: World) -> None:
    c, h = world.client, {**world.headers("admin_a"), "Content-Type": "application/json"}
    cases = [
        ("POST", "/api/v1/memories", {"key": "k", "content": "x" * (1024 * 1024 + 1)}, 413),
        ("POST", "/api/v1/memories", {"key": "k\x00", "content": "v"}, 422),
        ("POST", "/api/v1/memories", {"key": "k", "content": "v", "metadata": {"a": float("nan")}}, 422),
        ("POST", "/api/v1/search", {"query": "NEAR(a b) col:x ^ \"open"}, 400),
        ("POST", "/api/v1/search", {"query": "a", "mode": "telepathy"}, 422),
        ("GET", "/api/v1/memories?metadata=not-json", None, 422),
        ("GET", "/api/v1/memories?limit=0", None, 422),
        ("POST", "/api/v1/tasks", {"agent_type": "a", "session_id": "missing"}, 404),
        ("POST", "/api/v1/sessions/missing/end", {}, 404),
        ("DELETE", "/api/v1/memories", None, 405),
    ]
    for method, path, body, status in cases:
        r = c.request(method, path, headers=h, content=None if body is None else json.dumps(body))
        assert r.status_code == status, (method, path, r.status_code, r.text)
        assert set(r.json()["error"]) == {"type", "status", "message", "details"}
    assert "GET" in c.delete("/api/v1/memories", headers=h).headers["allow"]


def test_an_entrys_context_is_stored_and_returned(world: World) -> None:
    c, h = world.client, world.headers("member_a")
    stored = c.post("/api/v1/memories", json={"key": "k", "content": "v", "namespace": "ns", "context": "a title"}, headers=h)
    assert stored.status_code == 201 and stored.json()["context"] == "a title"
    assert c.get("/api/v1/memories/ns/k", headers=h).json()["context"] == "a title"
    batch = {"namespace": "turns", "context_window": 1, "items": [{"key": "a", "content": "one"}, {"key": "b", "content": "two"}]}
    assert c.post("/api/v1/memories/batch", json=batch, headers=h).status_code == 200
    assert {e["key"]: e["context"] for e in c.get("/api/v1/memories", params={"namespace": "turns"}, headers=h).json()} == {
        "a": None, "b": "one"
    }
    # A later store of the key without a context drops it, like content it is replaced.
    assert c.post("/api/v1/memories", json={"key": "k", "content": "v", "namespace": "ns"}, headers=h).json()["context"] is None
