"""Variables: encrypted at rest, values only from an explicit get, rotation, no plaintext fallback."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from engram import load_settings
from engram.cli import cli
from engram.errors import ConfigError, SecretKeyError
from engram.server.tenancy import Tenancy

from .conftest import CANARY_SECRET, World, build_world


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_canary_never_leaves_in_clear(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world = build_world(tmp_path)  # stores CANARY_SECRET as alpha's CANARY_VAR
    with world.client:
        admin = world.headers("admin_a")
        # Set it again over REST, read every list, and make it fail in every way we can.
        assert world.client.put("/api/v1/variables/CANARY_VAR", json={"value": CANARY_SECRET}, headers=admin).status_code == 200
        assert world.client.put("/api/v1/variables/bad name", json={"value": CANARY_SECRET}, headers=admin).status_code == 422
        assert world.client.put("/api/v1/variables/X", json={"value": CANARY_SECRET, "extra": 1}, headers=admin).status_code == 422
        assert world.client.put("/api/v1/variables/X", json={"value": CANARY_SECRET},
                                headers=world.headers("member_a")).status_code == 403
        listings = [
            world.client.get(path, headers=admin).text
            for path in ("/api/v1/variables", "/api/v1/admin/transactions", "/api/v1/admin/keys",
                         "/api/v1/admin/projects", "/api/v1/memories", "/api/v1/sessions", "/api/v1/tasks", "/api/v1/stats")
        ]
        for text in listings:
            assert CANARY_SECRET not in text
        # The explicit get is the one way out.
        got = world.client.get("/api/v1/variables/CANARY_VAR", headers=world.headers("member_a"))
        assert got.status_code == 200 and got.json()["value"] == CANARY_SECRET
        assert CANARY_SECRET not in repr(world.tenancy.control.variable(world.tenancy.control.project("alpha").id, "CANARY_VAR"))
        # Look at the files while the databases are open, WAL and all.
        files = files_under(tmp_path)
        assert any(p.name.endswith("-wal") for p in files), [p.name for p in files]
        needle = CANARY_SECRET.encode()
        for path in files:
            assert needle not in path.read_bytes(), f"{path} holds the secret in clear"
    world.tenancy.close()
    for path in files_under(tmp_path):
        assert needle not in path.read_bytes(), f"{path} holds the secret in clear"
    assert CANARY_SECRET not in caplog.text


def test_key_file_is_private_and_rotation_keeps_values(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    with Tenancy(load_settings(database_url=url)) as tenancy:
        control = tenancy.control
        project = control.ensure_default_project()
        control.set_variable(project.id, "OPENAI_API_KEY", "sk-one")
        key_file = tenancy.layout.key_file
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        before = key_file.read_bytes()
        old_cipher = control.store.variable(project.id, "OPENAI_API_KEY")["ciphertext"]
    result = CliRunner().invoke(cli, ["--db", url, "secrets", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    assert '"rotated": 1' in result.output and '"new_key": null' in result.output
    assert key_file.read_bytes() != before and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with Tenancy(load_settings(database_url=url)) as tenancy:
        control = tenancy.control
        project = control.ensure_default_project()
        assert control.store.variable(project.id, "OPENAI_API_KEY")["ciphertext"] != old_cipher
        assert control.variable(project.id, "OPENAI_API_KEY").value == "sk-one"


def test_wrong_key_is_an_error_not_plaintext(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    right, wrong = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with Tenancy(load_settings(database_url=url, secret_key=right)) as tenancy:
        tenancy.control.set_variable(tenancy.control.ensure_default_project().id, "TOKEN", "v")
    with Tenancy(load_settings(database_url=url, secret_key=wrong)) as tenancy:
        with pytest.raises(SecretKeyError) as caught:
            tenancy.control.variable(tenancy.control.ensure_default_project().id, "TOKEN")
        assert right not in str(caught.value) and wrong not in str(caught.value)
    # Old key kept after the new one (MultiFernet): both decrypt, the first encrypts.
    with Tenancy(load_settings(database_url=url, secret_key=f"{wrong},{right}")) as tenancy:
        assert tenancy.control.variable(tenancy.control.ensure_default_project().id, "TOKEN").value == "v"
    with pytest.raises(ConfigError) as caught:
        with Tenancy(load_settings(database_url=url, secret_key="not-a-fernet-key")) as tenancy:
            tenancy.control.variables(tenancy.control.ensure_default_project().id)
            tenancy.control.variable(tenancy.control.ensure_default_project().id, "TOKEN")
    assert "not-a-fernet-key" not in str(caught.value)


def test_wrong_key_over_rest_is_one_error_shape(world: World, tmp_path: Path) -> None:
    world.tenancy.control._vault = None
    world.tenancy.control._vault_factory = lambda: __import__("engram.server.vault", fromlist=["Vault"]).Vault(
        [Fernet.generate_key()])
    r = world.client.get("/api/v1/variables/CANARY_VAR", headers=world.headers("admin_a"))
    assert r.status_code == 500 and r.json()["error"]["type"] == "SecretKeyError"
    assert CANARY_SECRET not in r.text
