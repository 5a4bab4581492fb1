"""Key rotation loses nothing: a running server keeps reading, a restart keeps reading, a crash keeps reading."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from engram import load_settings
from engram.cli import cli
from engram.errors import SecretKeyError
from engram.server import vault as vault_module
from engram.server.tenancy import Tenancy
from engram.stores.sqlite.control import SQLiteControlStore


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: no ENGRAM_* setting of the developer's leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(url: str, env: dict[str, str]) -> Iterator[str]:
    """``engram serve`` as a child process; yields its base URL once /health answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engram.cli", "--db", url, "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"engram serve exited with {proc.returncode}: {proc.stdout.read().decode()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("engram serve did not answer /health within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    # A failed read must never have left a traceback, a value or a key in the server's output.
    text = output.decode(errors="replace")
    assert "Traceback" not in text, text


def rotate(url: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "engram.cli", "--db", url, "secrets", "rotate", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def admin_keys(url: str, projects: list[str]) -> dict[str, str]:
    """One admin key per project, made before the server starts (it opens the same control database)."""
    with Tenancy(load_settings(database_url=url)) as tenancy:
        control = tenancy.control
        control.bootstrap()
        for name in projects:
            if name != "default":
                control.create_project(name)
        return {name: control.create_key(name, "admin").key for name in projects}


VALUES = {f"VAR_{i:02d}": f"value-{i}-{'x' * i}" for i in range(20)}


def project_of(name: str) -> str:
    return "alpha" if int(name[-2:]) % 2 else "default"


def read_all(base: str, keys: dict[str, str]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, value in VALUES.items():
            r = client.get(f"/api/v1/variables/{name}", headers={"Authorization": f"Bearer {keys[project_of(name)]}"})
            assert r.status_code == 200, (name, r.status_code, r.text)
            assert r.json()["value"] == value


def test_rotation_while_a_server_runs_and_after_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    env = clean_env()
    keys = admin_keys(url, ["default", "alpha"])
    with server(url, env) as base:
        with httpx.Client(base_url=base, timeout=30) as client:
            for name, value in VALUES.items():
                r = client.put(f"/api/v1/variables/{name}", json={"value": value},
                               headers={"Authorization": f"Bearer {keys[project_of(name)]}"})
                assert r.status_code == 200, r.text
        key_file = tmp_path / "engram-secret.key"
        first = key_file.read_bytes()
        for _ in range(2):
            report = rotate(url, env)
            assert report["rotated"] == 20 and report["new_key"] is None
        assert key_file.read_bytes() != first and len(key_file.read_bytes().split()) == 1  # old keys retired
        read_all(base, keys)
        # A write through the server that started before the rotations is sealed with the current key.
        with httpx.Client(base_url=base, timeout=30) as client:
            r = client.put("/api/v1/variables/VAR_00", json={"value": VALUES["VAR_00"]},
                           headers={"Authorization": f"Bearer {keys['default']}"})
            assert r.status_code == 200, r.text
    with server(url, env) as base:
        read_all(base, keys)


def _crash_in_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key file has new + old keys; the re-encryption never starts."""
    def crash(self, *args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(SQLiteControlStore, "replace_ciphertexts", crash)


def _crash_mid_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Half the values are re-encrypted inside the transaction, then it dies (rolled back)."""
    calls = []
    real = vault_module.Vault.rotate_token

    def crash(self, token, name):
        calls.append(name)
        if len(calls) > 10:
            raise RuntimeError("power cut")
        return real(self, token, name)

    monkeypatch.setattr(vault_module.Vault, "rotate_token", crash)


def _crash_before_retiring(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transaction committed; the key file is never cut down to the new key."""
    calls = []
    real = vault_module.write_key_file

    def crash(path, keys):
        calls.append(path)
        if len(calls) > 1:
            raise RuntimeError("power cut")
        real(path, keys)

    monkeypatch.setattr(vault_module, "write_key_file", crash)


@pytest.mark.parametrize("inject", [_crash_in_store, _crash_mid_transaction, _crash_before_retiring])
def test_a_crash_between_rotation_steps_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inject) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    with Tenancy(load_settings(database_url=url)) as tenancy:
        control = tenancy.control
        project = control.ensure_default_project()
        for name, value in VALUES.items():
            control.set_variable(project.id, name, value)
        key_file = tenancy.layout.key_file
        before = key_file.read_bytes()
        inject(monkeypatch)
        with pytest.raises(RuntimeError, match="power cut"):
            control.rotate_secrets()
        monkeypatch.undo()
        assert key_file.read_bytes() != before  # the crash came after the new key was written
        assert all(control.variable(project.id, n).value == v for n, v in VALUES.items())
    # A fresh process (a restart) reads every value, and the next rotation completes.
    with Tenancy(load_settings(database_url=url)) as tenancy:
        control = tenancy.control
        project = control.ensure_default_project()
        assert all(control.variable(project.id, n).value == v for n, v in VALUES.items())
        assert control.rotate_secrets().rotated == 20
    assert len(key_file.read_bytes().split()) == 1
    with Tenancy(load_settings(database_url=url)) as tenancy:
        project = tenancy.control.ensure_default_project()
        assert all(tenancy.control.variable(project.id, n).value == v for n, v in VALUES.items())


def test_a_process_loaded_before_a_rotation_reads_and_writes_with_the_new_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    with Tenancy(load_settings(database_url=url)) as server_side, Tenancy(load_settings(database_url=url)) as cli_side:
        project = server_side.control.ensure_default_project()
        server_side.control.set_variable(project.id, "A", "one")  # loads the server's vault: the old key
        assert cli_side.control.rotate_secrets().rotated == 1
        assert server_side.control.variable(project.id, "A").value == "one"
        server_side.control.set_variable(project.id, "B", "two")  # written after the rotation
        current = Fernet(server_side.layout.key_file.read_bytes().strip())
        assert current.decrypt(server_side.control.store.variable(project.id, "B")["ciphertext"].encode()) == b"two"
    # The key file is replaced by an unrelated key: the reread does not help, a typed error follows.
    lost = server_side.layout.key_file.read_bytes().strip().decode()
    vault_module.write_key_file(server_side.layout.key_file, [Fernet.generate_key()])
    with Tenancy(load_settings(database_url=url)) as tenancy:
        with pytest.raises(SecretKeyError) as caught:
            tenancy.control.variable(project.id, "A")
        assert "one" not in str(caught.value) and lost not in str(caught.value)


def test_with_one_key_in_the_setting_rotation_changes_nothing_and_stages_a_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    old = Fernet.generate_key().decode()
    with Tenancy(load_settings(database_url=url, secret_key=old)) as tenancy:
        project = tenancy.control.ensure_default_project()
        tenancy.control.set_variable(project.id, "A", "one")
        cipher = tenancy.control.store.variable(project.id, "A")["ciphertext"]
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", url, "secrets", "rotate"], env={"ENGRAM_SECRET_KEY": old})
    assert result.exit_code == 0, result.output
    assert "nothing was re-encrypted" in result.output and old not in result.output
    result = runner.invoke(cli, ["--db", url, "secrets", "rotate", "--json"], env={"ENGRAM_SECRET_KEY": old})
    report = json.loads(result.output)
    assert report["rotated"] == 0 and report["source"] == "staged"
    new = report["new_key"]
    Fernet(new)  # a usable key
    with Tenancy(load_settings(database_url=url, secret_key=old)) as tenancy:  # a server not yet updated
        project = tenancy.control.ensure_default_project()
        assert tenancy.control.store.variable(project.id, "A")["ciphertext"] == cipher
        assert tenancy.control.variable(project.id, "A").value == "one"
    # Step 2: with NEW,OLD deployed, the rotation re-encrypts under NEW; then NEW alone reads everything.
    result = runner.invoke(cli, ["--db", url, "secrets", "rotate", "--json"], env={"ENGRAM_SECRET_KEY": f"{new},{old}"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"rotated": 1, "source": "setting", "new_key": None}
    for setting in (f"{new},{old}", new):
        with Tenancy(load_settings(database_url=url, secret_key=setting)) as tenancy:
            assert tenancy.control.variable(tenancy.control.ensure_default_project().id, "A").value == "one"
    assert not (tmp_path / "engram-secret.key").exists()  # the setting is the only place keys live


def test_rotate_help_says_what_happens_to_the_keys() -> None:
    result = CliRunner().invoke(cli, ["secrets", "rotate", "--help"])
    assert result.exit_code == 0
    for words in ("one database", "ENGRAM_SECRET_KEY=NEW,OLD", "Key file", "--json"):
        assert words in result.output, result.output


def test_writes_racing_rotations_are_never_sealed_with_a_retired_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    written: dict[str, str] = {}
    errors: list[BaseException] = []
    with Tenancy(load_settings(database_url=url)) as server_side, Tenancy(load_settings(database_url=url)) as cli_side:
        project = server_side.control.ensure_default_project()
        server_side.control.set_variable(project.id, "W_START", "start")
        written["W_START"] = "start"
        done = threading.Event()

        def rotate_many() -> None:
            try:
                for _ in range(5):
                    cli_side.control.rotate_secrets()
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                done.set()

        rotator = threading.Thread(target=rotate_many)
        rotator.start()
        i = 0
        while not done.is_set() or i < 5:
            name, value = f"W_{i:03d}", f"value {i}"
            server_side.control.set_variable(project.id, name, value)
            written[name] = value
            assert server_side.control.variable(project.id, "W_START").value == "start"
            i += 1
        rotator.join()
    assert not errors, errors
    # A fresh process holds only the key file's keys: every value written during the rotations opens.
    with Tenancy(load_settings(database_url=url)) as tenancy:
        project = tenancy.control.ensure_default_project()
        assert all(tenancy.control.variable(project.id, n).value == v for n, v in written.items())
