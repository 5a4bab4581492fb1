"""A server with two projects, keys of every kind, and canary data in project alpha."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("mcp")

from cryptography.fernet import Fernet  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from mcp.client import Client  # noqa: E402

from engram import Memory, load_settings  # noqa: E402
from engram.server.app import create_app  # noqa: E402
from engram.server.mcp import Target, build_mcp_server  # noqa: E402
from engram.server.tenancy import Tenancy  # noqa: E402

CANARY = "zebracanary"  # a word that appears only in project alpha's data
CANARY_SECRET = "canary-secret-6b1f0e9d-never-in-clear"
CANARY_USER = "canary-user"  # a user_id with messages and a profile in project alpha


@dataclass
class World:
    tenancy: Tenancy
    app: FastAPI
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {} if who == "none" else {"Authorization": f"Bearer {self.keys[who]}"}


def build_world(tmp_path: Path, *, url: str | None = None, max_auth_failures: int = 1_000_000) -> World:
    url = url or f"sqlite:///{tmp_path / 'engram.db'}"
    # Servers on PostgreSQL share variables across machines, so they take the secret key as a setting.
    secret = {"secret_key": Fernet.generate_key().decode()} if url.startswith("postgresql") else {}
    settings = load_settings(database_url=url, **secret)
    tenancy = Tenancy(settings)
    control = tenancy.control
    server_admin = control.bootstrap()
    assert server_admin is not None
    control.create_project("alpha")
    control.create_project("beta")
    keys = {
        "admin_a": control.create_key("alpha", "admin").key,
        "member_a": control.create_key("alpha", "member").key,
        "admin_b": control.create_key("beta", "admin").key,
        "member_b": control.create_key("beta", "member").key,
        "server_admin": server_admin.key,
        "malformed": "not a key!",
        "unknown": "engram_000000000000_" + "x" * 43,
    }
    revoked = control.create_key("alpha", "admin")
    control.revoke_key(revoked.id)
    keys["revoked"] = revoked.key
    keys["expired"] = control.create_key("alpha", "admin", expires_in_days=1e-9).key

    alpha = tenancy.memory(control.project("alpha").id)
    entry = alpha.store("secret-key", f"{CANARY} lives in alpha", namespace="secret-ns", metadata={"tag": CANARY})
    session = alpha.session_start({"note": CANARY})
    task = alpha.task_create("planner", {"goal": CANARY}, session_id=session.id)
    message = alpha.add_message(session.id, "user", f"{CANARY} says hello", user_id=CANARY_USER)
    alpha.summary_save(session.id, f"the user is {CANARY}", message_count=1, last_seq=message.seq)
    alpha.profile_save(CANARY_USER, {"pet": {"value": CANARY, "source_message_ids": [message.id]}})
    checkpoint = alpha.checkpoint_save(session.id, {"waiting_for": CANARY}, run_id="run-1")
    run = alpha.run_start(session.id, run_id="run-1", user_id=CANARY_USER)
    blob = alpha.blobs.put(f"{CANARY} picture".encode(), name=f"{CANARY}.png", metadata={"tag": CANARY})
    control.set_variable(control.project("alpha").id, "CANARY_VAR", CANARY_SECRET)
    app = create_app(tenancy=tenancy, max_auth_failures=max_auth_failures)
    client = TestClient(app)
    return World(tenancy, app, client, keys,
                 {"entry": entry.id, "session": session.id, "task": task.id, "revoked_key": revoked.id,
                  "message": message.id, "checkpoint": checkpoint.id, "run": run.id, "blob": blob.id})


@pytest.fixture(params=["sqlite", "postgresql"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The base URL of a server's database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'engram.db'}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = build_world(tmp_path)
    with w.client:
        yield w
    w.tenancy.close()


class LiveServer:
    """The app under uvicorn on a free loopback port, in a thread (for real HTTP clients)."""

    def __init__(self, app: FastAPI):
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live_world(tmp_path: Path) -> Iterator[tuple[World, LiveServer]]:
    w = build_world(tmp_path)
    with LiveServer(w.app) as live:
        yield w, live
    w.tenancy.close()


@contextlib.asynccontextmanager
async def mcp_connected() -> AsyncIterator[tuple[Client, Memory]]:
    """The MCP SDK's client, in-process, on a fresh in-memory store; yields both."""
    with Memory("memory://") as memory:
        async with Client(build_mcp_server(lambda ctx: Target(memory))) as client:
            yield client, memory
