"""The control-plane store contract: SQLite and in-memory stores give the same rows.

And the server picks its control store through the backend registry, by the base
URL's scheme.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from engram.errors import BackendError, ConfigError, Conflict, InvalidInput
from engram.stores import registry
from engram.stores.control_base import ControlStore
from engram.stores.memory.control import MemoryControlStore
from engram.stores.sqlite.control import SQLiteControlStore
from engram.stores.control_base import TransactionQuery

T0, T1, T2 = "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def store(request, tmp_path) -> Iterator[ControlStore]:
    made: ControlStore
    if request.param == "sqlite":
        made = SQLiteControlStore.for_server(f"sqlite:///{tmp_path / 'engram.db'}")
    elif request.param == "postgresql":
        from engram.stores.postgres.control import PostgresControlStore

        url = request.getfixturevalue("postgres_url")
        made = PostgresControlStore.for_server(url)
    else:
        made = MemoryControlStore.for_server("memory://")
    yield made
    made.close()


def key(id: str, project_id: str = "p1", role: str = "member", user_id: str | None = None, at: str = T0) -> dict:
    return {"id": id, "prefix": f"engram_{id}", "hash": f"h-{id}", "project_id": project_id, "role": role,
            "user_id": user_id, "name": None, "created_at": at, "expires_at": None}


def test_users_projects_and_keys(store: ControlStore) -> None:
    store.insert_project({"id": "p1", "name": "zeta", "created_at": T0})
    store.insert_project({"id": "p2", "name": "alpha", "created_at": T0})
    assert [p["name"] for p in store.projects()] == ["alpha", "zeta"]
    assert store.project(name="zeta") == {"id": "p1", "name": "zeta", "created_at": T0}
    assert store.project(id="p2")["name"] == "alpha" and store.project(id="nope") is None
    store.insert_user({"id": "u1", "name": "bob", "created_at": T0})
    store.insert_user({"id": "u2", "name": "ann", "created_at": T0})
    assert [u["name"] for u in store.users()] == ["ann", "bob"]
    assert store.user_by_name("bob")["id"] == "u1" and store.user_by_name("carl") is None

    store.insert_key(key("k2", user_id="u1", at=T1))
    store.insert_key(key("k1", user_id="u1", at=T1))
    store.insert_key(key("k0", project_id="p2", role="server_admin"))
    row = store.key("k1")
    assert row == {
        "id": "k1", "prefix": "engram_k1", "project_id": "p1", "project": "zeta", "role": "member", "user_id": "u1",
        "user": "bob", "name": None, "created_at": T1, "expires_at": None, "revoked_at": None, "last_used_at": None,
    }
    assert store.key_by_hash("h-k1") == row and store.key_by_hash("h-x") is None
    assert [k["id"] for k in store.keys()] == ["k0", "k1", "k2"]
    assert [k["id"] for k in store.keys(project_id="p1")] == ["k1", "k2"]
    assert store.count_keys("server_admin") == 1 and store.count_keys("admin") == 0

    assert store.revoke_key("k2", revoked_at=T2) and not store.revoke_key("k2", revoked_at=T2)
    assert not store.revoke_key("nope", revoked_at=T2)
    assert [k["id"] for k in store.keys(project_id="p1")] == ["k1"]
    assert [k["id"] for k in store.keys(project_id="p1", include_revoked=True)] == ["k1", "k2"]
    store.touch_key("k1", used_at=T2)
    assert store.key("k1")["last_used_at"] == T2

    assert store.delete_user("u1", revoked_at=T2) == 1  # k1; k2 was revoked already
    assert store.user_by_name("bob") is None
    assert {k["id"]: (k["user_id"], k["user"], k["revoked_at"]) for k in store.keys(include_revoked=True)} == {
        "k0": (None, None, None), "k1": (None, None, T2), "k2": (None, None, T2),
    }


def test_constraints_are_conflicts(store: ControlStore) -> None:
    store.insert_project({"id": "p1", "name": "alpha", "created_at": T0})
    store.insert_user({"id": "u1", "name": "bob", "created_at": T0})
    store.insert_key(key("k1"))
    attempts = [
        ("creating a project", lambda: store.insert_project({"id": "p2", "name": "alpha", "created_at": T0})),
        ("creating a project", lambda: store.insert_project({"id": "p1", "name": "beta", "created_at": T0})),
        ("creating a user", lambda: store.insert_user({"id": "u2", "name": "bob", "created_at": T0})),
        ("creating an API key", lambda: store.insert_key({**key("k2"), "hash": "h-k1"})),
        ("creating an API key", lambda: store.insert_key(key("k1"))),
        ("creating an API key", lambda: store.insert_key(key("k3", project_id="nope"))),
        ("creating an API key", lambda: store.insert_key(key("k4", user_id="nobody"))),
        ("creating an API key", lambda: store.insert_key(key("k5", role="root"))),
        ("storing a variable", lambda: store.put_variable("nope", "V", lambda: "c", now=T0)),
    ]
    for action, attempt in attempts:
        with pytest.raises(Conflict, match=f"^{action} violates a constraint: "):
            attempt()
    assert [k["id"] for k in store.keys()] == ["k1"] and len(store.projects()) == 1 and len(store.users()) == 1


def test_the_first_key_of_a_role_is_inserted_once(store: ControlStore) -> None:
    store.insert_project({"id": "p1", "name": "default", "created_at": T0})
    assert store.insert_first_key(key("k1", role="server_admin"))
    assert not store.insert_first_key(key("k2", role="server_admin"))
    store.revoke_key("k1", revoked_at=T1)
    assert not store.insert_first_key(key("k3", role="server_admin"))  # ever issued, revoked or not
    assert store.insert_first_key(key("k4", role="admin"))
    assert [k["id"] for k in store.keys(include_revoked=True)] == ["k1", "k4"]
    with pytest.raises(Conflict, match="^creating the first API key violates a constraint: "):
        store.insert_first_key(key("k5", project_id="nope", role="member"))


def test_variables_hold_ciphertext_and_rotate_all_or_nothing(store: ControlStore) -> None:
    store.insert_project({"id": "p1", "name": "alpha", "created_at": T0})
    store.insert_project({"id": "p2", "name": "beta", "created_at": T0})
    assert store.put_variable("p1", "B", lambda: "c-b", now=T0) == {"name": "B", "created_at": T0, "updated_at": T0}
    store.put_variable("p1", "A", lambda: "c-a", now=T0)
    store.put_variable("p2", "A", lambda: "c-a2", now=T0)
    assert store.put_variable("p1", "B", lambda: "c-b2", now=T1) == {"name": "B", "created_at": T0, "updated_at": T1}
    assert store.variable("p1", "B") == {"name": "B", "ciphertext": "c-b2", "created_at": T0, "updated_at": T1}
    assert store.variables("p1") == [
        {"name": "A", "created_at": T0, "updated_at": T0}, {"name": "B", "created_at": T0, "updated_at": T1},
    ]

    def broken(project_id: str, name: str, ciphertext: str) -> str:
        if project_id == "p2":
            raise RuntimeError("power cut")
        return ciphertext + "!"

    with pytest.raises(RuntimeError):
        store.replace_ciphertexts(broken)
    assert store.variable("p1", "A")["ciphertext"] == "c-a"  # nothing changed
    assert store.replace_ciphertexts(lambda p, n, c: f"{p}/{n}/{c}") == 3
    assert store.variable("p2", "A")["ciphertext"] == "p2/A/c-a2"
    assert store.delete_variable("p1", "A") and not store.delete_variable("p1", "A")
    assert store.variable("p1", "A") is None


def test_transaction_log(store: ControlStore) -> None:
    store.insert_project({"id": "p1", "name": "alpha", "created_at": T0})
    for i, (at, project_id, outcome) in enumerate([(T0, "p1", "ok"), (T1, None, "error"), (T2, "p1", "ok")]):
        store.record_transaction({
            "at": at, "key_id": f"k{i}", "key_prefix": None, "user_name": None, "project_id": project_id,
            "operation": "memory.store", "target": "ns/k", "outcome": outcome, "status": 200, "duration_ms": 1.5,
        })
    rows = store.transactions()
    assert [r["key_id"] for r in rows] == ["k2", "k1", "k0"]
    assert rows[0]["project"] == "alpha" and rows[1]["project"] is None and rows[0]["duration_ms"] == 1.5
    assert set(rows[0]) == {
        "id", "at", "key_id", "key_prefix", "user_name", "project_id", "project", "operation", "target", "outcome",
        "status", "duration_ms",
    }
    assert [r["key_id"] for r in store.transactions(TransactionQuery(project_id="p1"))] == ["k2", "k0"]
    assert [r["key_id"] for r in store.transactions(TransactionQuery(outcome="error"))] == ["k1"]
    assert [r["key_id"] for r in store.transactions(TransactionQuery(since=T1, until=T2))] == ["k1"]
    assert [r["key_id"] for r in store.transactions(TransactionQuery(limit=1, offset=1))] == ["k1"]
    assert store.prune_transactions(before=T1) == 1
    assert [r["key_id"] for r in store.transactions()] == ["k2", "k1"]


def test_a_closed_store_says_so(store: ControlStore) -> None:
    store.close()
    store.close()
    with pytest.raises(BackendError, match="closed"):
        store.projects()


def test_the_registry_picks_the_control_store_by_scheme(tmp_path) -> None:
    assert registry.control_store_class(f"sqlite:///{tmp_path / 'x.db'}") is SQLiteControlStore
    assert registry.control_store_class("memory://") is MemoryControlStore
    for scheme in ("postgresql", "postgres"):
        assert registry.control_store_class(f"{scheme}://u@h/db").__name__ == "PostgresControlStore"
    with pytest.raises(ConfigError, match="json:// backend has no server control plane"):
        registry.control_store_class(f"json:///{tmp_path}")


def test_a_plugin_registers_its_control_store(monkeypatch) -> None:
    from engram.stores.memory import MemoryStore

    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))
    registry.register_backend("mem9", MemoryStore, control=MemoryControlStore)
    assert registry.control_store_class("mem9://") is MemoryControlStore
    registry.register_backend("mem8", MemoryStore, control="engram.stores.memory.control:MemoryControlStore")
    assert registry.control_store_class("mem8://") is MemoryControlStore
    with pytest.raises(InvalidInput, match="subclass of engram.stores.control_base.ControlStore"):
        registry.register_backend("mem7", MemoryStore, control=MemoryStore)


def test_the_sqlite_control_database_sits_beside_the_store(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    store = SQLiteControlStore.for_server(f"sqlite:///{tmp_path / 'data' / 'engram.db'}")
    try:
        assert store.path == tmp_path / "data" / "engram-control.db" and store.path.exists()
    finally:
        store.close()


def test_an_entry_point_gives_a_plugin_scheme_its_control_store(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))
    monkeypatch.setattr(registry, "_entry_points_read", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    info = tmp_path / "engram_test_control_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: engram-test-control-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [engram.backends]
        ctldb = engram.stores.memory:MemoryStore
        [engram.control_stores]
        ctldb = engram.stores.memory.control:MemoryControlStore
        sqlite = engram.stores.memory.control:MemoryControlStore
    """))
    assert registry.control_store_class("ctldb://") is MemoryControlStore
    assert registry.control_store_class(f"sqlite:///{tmp_path / 'x.db'}") is SQLiteControlStore  # not replaced


def test_postgres_schema_names_derive_from_the_base_url() -> None:
    from engram.stores.postgres.control import control_schema, project_schema, with_schema

    base = "postgresql://u@h:5432/db?sslmode=disable&schema=prod&pool_size=2"
    assert control_schema(base) == "prod_control" and control_schema("postgresql://u@h/db") == "engram_control"
    assert project_schema(base, "ab" * 16) == "prod_p_" + "ab" * 16
    assert with_schema(base, "prod_control") == "postgresql://u@h:5432/db?sslmode=disable&pool_size=2&schema=prod_control"
    with pytest.raises(ConfigError, match="is at most 28 .* choose a shorter schema"):
        control_schema("postgresql://u@h/db?schema=" + "s" * 29)
