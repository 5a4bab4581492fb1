"""Server administrator versus project admin: who may mint, list and revoke keys, read the log, run the server.

A project admin (``admin_b``: an admin key of project beta) manages its own
project only; the server administrator (the first-start key) every project.
Also: the control-database migration that keeps an upgraded server's
administrator, the CLI's ``--role``, MCP, and the status the log records.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner

from engram.cli import cli
from engram.server import keys as api_keys
from engram.server.control import ControlPlane
from engram.stores.sqlite.control import MIGRATIONS, SQLiteControlStore
from engram.stores.sqlite.migrate import statements
from engram.stores.control_base import TransactionQuery

from .conftest import CANARY, LiveServer, World

API = "/api/v1"


def alpha_keys(world: World) -> list[tuple[str, object]]:
    return [(k.id, k.revoked_at) for k in world.tenancy.control.keys("alpha", include_revoked=True)]


def key_id_of(world: World, who: str) -> str:
    return world.tenancy.control.authenticate(world.keys[who]).key_id


def error_type(response) -> str:
    return response.json()["error"]["type"]


def test_project_admin_cannot_mint_keys_for_another_project(world: World) -> None:
    c, h = world.client, world.headers("admin_b")
    before, default_before = alpha_keys(world), world.tenancy.control.keys("default")
    for project in ("alpha", "default"):
        r = c.post(f"{API}/admin/keys", json={"project": project, "role": "admin"}, headers=h)
        assert r.status_code == 403 and error_type(r) == "PermissionDenied", r.text
        assert "'beta' only" in r.json()["error"]["message"]
    for body in ({"role": "server_admin"}, {"project": "beta", "role": "server_admin"}):
        r = c.post(f"{API}/admin/keys", json=body, headers=h)
        assert r.status_code == 403 and "server administrator" in r.json()["error"]["message"], r.text
    assert alpha_keys(world) == before and world.tenancy.control.keys("default") == default_before
    # Its own project: named or left out, admin and member keys.
    own = c.post(f"{API}/admin/keys", json={"role": "admin"}, headers=h)
    named = c.post(f"{API}/admin/keys", json={"project": "beta"}, headers=h)
    assert own.status_code == named.status_code == 201
    assert (own.json()["project"], own.json()["role"]) == ("beta", "admin")
    assert (named.json()["project"], named.json()["role"]) == ("beta", "member")


def test_project_admin_cannot_list_or_revoke_another_projects_keys(world: World) -> None:
    c, h = world.client, world.headers("admin_b")
    r = c.get(f"{API}/admin/keys", params={"project": "alpha"}, headers=h)
    assert r.status_code == 403 and error_type(r) == "PermissionDenied"
    listed = c.get(f"{API}/admin/keys", params={"include_revoked": True}, headers=h).json()
    assert listed and {k["project"] for k in listed} == {"beta"}
    target = key_id_of(world, "member_a")
    prefix = f"engram_{target}"
    missing = c.delete(f"{API}/admin/keys/engram_000000000000", headers=h)
    for ref in (target, prefix):
        r = c.delete(f"{API}/admin/keys/{ref}", headers=h)
        # The same answer as a key that does not exist: nothing says it is there.
        assert r.status_code == 404 == missing.status_code, r.text
        assert r.json()["error"]["message"] == f"API key {ref} does not exist"
    assert c.get(f"{API}/stats", headers=world.headers("member_a")).status_code == 200


def test_project_admin_reads_only_its_own_transactions(world: World) -> None:
    c = world.client
    assert c.post(f"{API}/memories", json={"key": "k", "content": CANARY}, headers=world.headers("member_a")).status_code == 201
    assert c.post(f"{API}/memories", json={"key": "k", "content": "b"}, headers=world.headers("member_b")).status_code == 201
    h = world.headers("admin_b")
    r = c.get(f"{API}/admin/transactions", params={"project": "alpha"}, headers=h)
    assert r.status_code == 403 and error_type(r) == "PermissionDenied"
    log = c.get(f"{API}/admin/transactions", headers=h).json()
    assert log and {t["project"] for t in log} == {"beta"}
    # Filtering by another project's key finds nothing either.
    by_key = c.get(f"{API}/admin/transactions", params={"key_id": key_id_of(world, "member_a")}, headers=h).json()
    assert by_key == []


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/admin/projects", None),
    ("POST", "/admin/projects", {"name": "gamma"}),
    ("GET", "/admin/users", None),
    ("POST", "/admin/users", {"name": "dave"}),
    ("DELETE", "/admin/users/carol", None),
    ("DELETE", "/admin/transactions?older_than_days=0", None),
])
def test_server_admin_routes_refuse_project_admins(world: World, method: str, path: str, body) -> None:
    world.tenancy.control.create_user("carol")
    assert world.client.post(f"{API}/memories", json={"key": "k", "content": "v"},
                             headers=world.headers("member_a")).status_code == 201
    for who in ("admin_a", "admin_b"):
        r = world.client.request(method, API + path, json=body, headers=world.headers(who))
        assert r.status_code == 403 and "server administrator" in r.json()["error"]["message"], (who, r.text)
    assert [p.name for p in world.tenancy.control.projects()] == ["alpha", "beta", "default"]
    assert [u.name for u in world.tenancy.control.users()] == ["carol"]
    assert world.tenancy.control.transactions(TransactionQuery(operation="memories.store"))  # nothing pruned
    r = world.client.request(method, API + path, json=body, headers=world.headers("server_admin"))
    assert r.status_code < 300, r.text


def test_server_admin_reaches_every_project(world: World) -> None:
    c, h = world.client, world.headers("server_admin")
    assert c.post(f"{API}/memories", json={"key": "k", "content": "v"}, headers=world.headers("member_a")).status_code == 201
    for project in ("alpha", "default"):
        r = c.post(f"{API}/admin/keys", json={"project": project, "role": "admin"}, headers=h)
        assert r.status_code == 201 and r.json()["project"] == project
    minted = c.post(f"{API}/admin/keys", json={"role": "server_admin"}, headers=h)
    assert minted.status_code == 201 and (minted.json()["project"], minted.json()["role"]) == ("default", "server_admin")
    wrong = c.post(f"{API}/admin/keys", json={"project": "alpha", "role": "server_admin"}, headers=h)
    assert error_type(wrong) == "InvalidInput" and "default" in wrong.json()["error"]["message"]
    listed = c.get(f"{API}/admin/keys", params={"project": "alpha"}, headers=h).json()
    assert key_id_of(world, "member_a") in [k["id"] for k in listed]
    assert {k["project"] for k in c.get(f"{API}/admin/keys", headers=h).json()} == {"alpha", "beta", "default"}
    log = c.get(f"{API}/admin/transactions", params={"project": "alpha"}, headers=h).json()
    assert log and {t["project"] for t in log} == {"alpha"}
    revoked = c.delete(f"{API}/admin/keys/{key_id_of(world, 'member_a')}", headers=h)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert c.get(f"{API}/stats", headers=world.headers("member_a")).status_code == 401
    # Its data routes act on the default project.
    assert c.post(f"{API}/memories", json={"key": "mine", "content": "x"}, headers=h).status_code == 201
    default = world.tenancy.memory(world.tenancy.control.project("default").id)
    assert default.get("mine") is not None


def test_project_admin_manages_its_own_keys(world: World) -> None:
    c, h = world.client, world.headers("admin_a")
    created = c.post(f"{API}/admin/keys", json={"project": "alpha", "role": "member"}, headers=h).json()
    assert c.get(f"{API}/stats", headers={"Authorization": f"Bearer {created['key']}"}).status_code == 200
    assert c.delete(f"{API}/admin/keys/{created['prefix']}", headers=h).status_code == 200
    assert c.get(f"{API}/stats", headers={"Authorization": f"Bearer {created['key']}"}).status_code == 401
    assert c.get(f"{API}/admin/transactions", params={"project": "alpha"}, headers=h).status_code == 200


def test_default_project_admin_cannot_revoke_the_server_admin(world: World) -> None:
    admin = world.tenancy.control.create_key("default", "admin").key
    h = {"Authorization": f"Bearer {admin}"}
    r = world.client.delete(f"{API}/admin/keys/{key_id_of(world, 'server_admin')}", headers=h)
    assert r.status_code == 403 and error_type(r) == "PermissionDenied"
    assert world.client.get(f"{API}/admin/projects", headers=world.headers("server_admin")).status_code == 200


def test_bootstrap_creates_a_server_admin_once(tmp_path: Path) -> None:
    control = ControlPlane(SQLiteControlStore(tmp_path / "control.db"))
    first = control.bootstrap()
    assert first is not None and first.role == "server_admin" and first.project == "default"
    assert control.authenticate(first.key).is_server_admin
    assert control.bootstrap() is None  # a project admin key does not count as the first key
    control.bootstrap("operator-chosen-admin-key-0123456789")
    assert control.authenticate("operator-chosen-admin-key-0123456789").is_server_admin
    control.close()


def _v1_control_db(path: Path) -> dict[str, str]:
    """A control database as engram wrote it before server_admin existed, with three admin keys."""
    conn = sqlite3.connect(path)
    for statement in statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("CREATE TABLE engram_control_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO engram_control_schema VALUES (1)")
    now = "2026-01-01T00:00:00+00:00"
    conn.execute("INSERT INTO projects VALUES ('p-default', 'default', ?), ('p-alpha', 'alpha', ?)", (now, now))
    plaintexts = {}
    for name, project in [("first admin key", "p-default"), ("ENGRAM_ADMIN_KEY", "p-default"),
                          ("ops", "p-default"), ("first admin key", "p-alpha")]:
        new = api_keys.generate()
        conn.execute(
            "INSERT INTO api_keys (id, prefix, hash, project_id, role, name, created_at) VALUES (?, ?, ?, ?, 'admin', ?, ?)",
            (new.id, new.prefix, new.digest, project, name, now),
        )
        plaintexts[f"{name}@{project}"] = new.plaintext
    conn.commit()
    conn.close()
    return plaintexts


def test_migration_keeps_an_upgraded_servers_administrator(tmp_path: Path) -> None:
    plaintexts = _v1_control_db(tmp_path / "control.db")
    control = ControlPlane(SQLiteControlStore(tmp_path / "control.db"))
    roles = {who: control.authenticate(key).role for who, key in plaintexts.items()}
    assert roles == {
        "first admin key@p-default": "server_admin",
        "ENGRAM_ADMIN_KEY@p-default": "server_admin",
        "ops@p-default": "admin",
        "first admin key@p-alpha": "admin",  # only the default project's bootstrap keys
    }
    assert control.bootstrap() is None  # the upgraded server already has its administrator
    assert control.create_key("alpha", "member").role == "member"  # the rebuilt table takes new keys
    control.close()


def test_cli_key_create_takes_every_role(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    run = CliRunner()
    assert run.invoke(cli, ["--db", url, "project", "create", "alpha"]).exit_code == 0
    for role, project in (("member", "alpha"), ("admin", "alpha"), ("server_admin", "default")):
        created = run.invoke(cli, ["--db", url, "key", "create", "--project", project, "--role", role, "--json"])
        assert created.exit_code == 0, created.output
        assert json.loads(created.output)["role"] == role
    bad = run.invoke(cli, ["--db", url, "key", "create", "--project", "alpha", "--role", "server_admin"])
    assert bad.exit_code == 2 and "default" in bad.output
    assert run.invoke(cli, ["--db", url, "key", "create", "--role", "root"]).exit_code == 2


def test_the_log_records_the_status_sent(world: World) -> None:
    c, h = world.client, world.headers("admin_a")
    sent = [
        c.post(f"{API}/memories", json={"key": "k", "content": "v", "namespace": "ns"}, headers=h).status_code,
        c.delete(f"{API}/memories/ns/k", headers=h).status_code,
        c.put(f"{API}/variables/V", json={"value": "x"}, headers=h).status_code,
        c.delete(f"{API}/variables/V", headers=h).status_code,
        c.post(f"{API}/sessions", json={}, headers=h).status_code,
    ]
    assert sent == [201, 204, 200, 204, 201]
    log = world.tenancy.control.transactions(project="alpha")
    assert [t.status for t in reversed(log)] == sent
    assert [t.operation for t in reversed(log)] == [
        "memories.store", "memories.delete", "variables.set", "variables.delete", "sessions.start"]


async def test_mcp_keeps_every_key_in_its_project(live_world: tuple[World, LiveServer]) -> None:
    """No MCP tool takes a project, and beta's admin and the server admin see nothing of alpha through MCP."""
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    world, live = live_world
    for who in ("admin_b", "server_admin"):
        transport = streamable_http_client(
            f"{live.url}/mcp",
            http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {world.keys[who]}"}, timeout=30),
        )
        async with Client(transport, read_timeout_seconds=30) as client:
            tools = (await client.list_tools()).tools
            for tool in tools:
                names = set((tool.input_schema or {}).get("properties", {}))
                assert not names & {"project", "project_id", "project_name"}, tool.name
            found = await client.call_tool("memory_search", {"query": CANARY})
            assert found.structured_content["count"] == 0, who
            listed = await client.call_tool("memory_list", {})
            assert CANARY not in json.dumps(listed.structured_content), who
            got = await client.call_tool("memory_get", {"key": "secret-key", "namespace": "secret-ns"})
            assert got.is_error and got.structured_content["error"]["status"] == 404, who
            assert (await client.call_tool("chat_search", {"query": CANARY})).structured_content["count"] == 0
            stored = await client.call_tool("memory_store", {"key": "secret-key", "content": "overwrite",
                                                             "namespace": "secret-ns"})
            assert not stored.is_error
    alpha = world.tenancy.memory(world.tenancy.control.project("alpha").id)
    assert CANARY in alpha.get("secret-key", namespace="secret-ns").content
