"""Several servers on one PostgreSQL database are one server: keys, the first admin key, the log.

Each "server" here is its own ``Tenancy`` (its own connection pools, as a process
has); ``engram serve --workers`` is tested with real processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from engram import load_settings
from engram.server.app import create_app
from engram.server.tenancy import Tenancy

API = "/api/v1"


def tenancy(url: str) -> Tenancy:
    return Tenancy(load_settings(database_url=url, secret_key=SECRET))


SECRET = Fernet.generate_key().decode()


def test_servers_starting_together_make_one_admin_key(postgres_url: str) -> None:
    tenancies = [tenancy(postgres_url) for _ in range(8)]
    try:
        made: list[object] = []
        barrier = threading.Barrier(len(tenancies))

        def start(t: Tenancy) -> None:
            barrier.wait()
            made.append(t.control.bootstrap())

        threads = [threading.Thread(target=start, args=(t,)) for t in tenancies]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sum(m is not None for m in made) == 1
        assert [k.role for k in tenancies[0].control.keys(include_revoked=True)] == ["server_admin"]
        assert len(tenancies[0].control.projects()) == 1
    finally:
        for t in tenancies:
            t.close()


def test_a_key_revoked_or_expired_on_one_server_is_refused_by_the_other(postgres_url: str) -> None:
    with tenancy(postgres_url) as one, tenancy(postgres_url) as two:
        admin = one.control.bootstrap()
        assert admin is not None
        with TestClient(create_app(tenancy=one)) as c1, TestClient(create_app(tenancy=two)) as c2:
            member = c1.post(f"{API}/admin/keys", headers={"X-API-Key": admin.key}, json={"role": "member"}).json()
            assert c2.get(f"{API}/stats", headers={"X-API-Key": member["key"]}).status_code == 200
            assert c1.delete(f"{API}/admin/keys/{member['id']}", headers={"X-API-Key": admin.key}).status_code == 200
            refused = c2.get(f"{API}/stats", headers={"X-API-Key": member["key"]})  # at once: nothing is cached
            assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]

            brief = two.control.create_key("default", "member", expires_in_days=1.5 / 86400)  # 1.5 s
            assert c1.get(f"{API}/stats", headers={"X-API-Key": brief.key}).status_code == 200
            time.sleep(1.6)
            expired = c1.get(f"{API}/stats", headers={"X-API-Key": brief.key})
            assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_each_write_is_logged_once_whichever_server_took_it(postgres_url: str) -> None:
    with tenancy(postgres_url) as one, tenancy(postgres_url) as two:
        admin = one.control.bootstrap()
        assert admin is not None
        headers = {"X-API-Key": admin.key}
        with TestClient(create_app(tenancy=one)) as c1, TestClient(create_app(tenancy=two)) as c2:
            for i in range(10):
                c = (c1, c2)[i % 2]
                assert c.post(f"{API}/memories", headers=headers, json={"key": f"k{i}", "content": "x"}).status_code == 201
            assert c2.get(f"{API}/memories/default/k3", headers=headers).status_code == 200
            for c in (c1, c2):
                log = c.get(f"{API}/admin/transactions", headers=headers, params={"operation": "memories.store"}).json()
                assert sorted(t["target"] for t in log) == sorted(f"default/k{i}" for i in range(10))


def test_projects_live_in_their_own_schemas(postgres_url: str) -> None:
    import psycopg

    with tenancy(postgres_url) as t:
        t.control.bootstrap()
        beta = t.control.create_project("beta")
        t.memory(beta.id).store("only-beta", "a beta note")
        t.memory(t.control.project("default").id).store("only-default", "a default note")
        base = re.search(r"schema=(\w+)", postgres_url).group(1)
        with psycopg.connect(postgres_url.split("?")[0]) as conn:
            rows = conn.execute(
                f"SELECT key FROM {base}_p_{beta.id}.engram_entries UNION ALL SELECT '|' UNION ALL "
                f"SELECT key FROM {base}.engram_entries"
            ).fetchall()
        assert [r[0] for r in rows] == ["only-beta", "|", "only-default"]


def test_serve_workers_share_one_port_and_the_settings(postgres_url: str, tmp_path: Path) -> None:
    """`engram serve --workers 2`: two processes answer, with the --db and --config given to the command."""
    config = tmp_path / "engram.yaml"
    config.write_text("max_request_bytes: 2000\n")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update(ENGRAM_EMBEDDER="none", ENGRAM_SECRET_KEY=SECRET)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parents[2] / "src"), env.get("PYTHONPATH")) if p)
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from engram.cli import main; main()", "--db", postgres_url, "--config", str(config),
             "serve", "--port", str(port), "--workers", "2", "--log-level", "info"],
            env=env, stdout=sink, stderr=subprocess.STDOUT, text=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            text = log.read_text()
            if text.count("Application startup complete") >= 2:
                break
            assert process.poll() is None, text
            assert time.monotonic() < deadline, text
            time.sleep(0.3)
        key = re.search(r"engram_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", text).group(0)
        workers = set(re.findall(r"Started server process \[(\d+)\]", text))
        assert len(workers) == 2 and str(process.pid) not in workers
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30) as c:
            for i in range(6):
                assert c.post(f"{API}/memories", json={"key": f"k{i}", "content": "x"}).status_code == 201
            assert len(c.get(f"{API}/memories").json()) == 6
            too_big = c.post(f"{API}/memories", json={"key": "big", "content": "x" * 5000})
            assert too_big.status_code == 413  # the config file's max_request_bytes reached the workers
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_variables_on_postgresql_need_the_shared_secret_key(postgres_url: str) -> None:
    with Tenancy(load_settings(database_url=postgres_url)) as t:
        admin = t.control.bootstrap()
        assert admin is not None
        with TestClient(create_app(tenancy=t)) as c:
            r = c.put(f"{API}/variables/TOKEN", headers={"X-API-Key": admin.key}, json={"value": "s3cret"})
            assert r.status_code == 400, r.text
            assert "ENGRAM_SECRET_KEY, the same on every server" in r.json()["error"]["message"]
            assert c.get(f"{API}/variables", headers={"X-API-Key": admin.key}).json() == []


def test_workers_need_a_database_other_processes_can_open() -> None:
    from click.testing import CliRunner

    from engram.cli import cli

    result = CliRunner().invoke(cli, ["--db", "memory://", "serve", "--workers", "2"])
    assert result.exit_code == 2 and "--workers needs a sqlite:// or postgresql:// database" in result.output
