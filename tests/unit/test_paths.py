"""Where file stores live: missing directories are errors (but the default location),
what engram creates is readable by its owner only, and locations print as absolute paths."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import engram
from engram.config import default_data_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that masks nothing: the modes below must not come from the umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_a_missing_directory_is_an_error_that_names_it(tmp_path: Path, scheme: str) -> None:
    missing = tmp_path / "no" / "such"
    url = f"sqlite:///{missing / 'x.db'}" if scheme == "sqlite" else f"json:///{missing}"
    with pytest.raises(engram.ConfigError) as raised:
        engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))
    assert f"directory {missing} does not exist: create it" in str(raised.value)
    assert raised.value.exit_code == 2  # bad input, not a crash
    assert not (tmp_path / "no").exists()  # and nothing was made on the way


def test_a_file_where_the_directory_should_be_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(engram.ConfigError, match="is not a directory"):
        engram.Memory(f"json:///{tmp_path / 'f'}")


def test_the_default_location_is_created_owner_only(tmp_path: Path, monkeypatch, open_umask) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("ENGRAM_DATABASE_URL", raising=False)
    monkeypatch.delenv("ENGRAM_CONFIG", raising=False)
    assert default_data_dir() == tmp_path / "data" / "engram"
    with engram.Memory(settings=engram.load_settings(embedder="none")) as memory:
        memory.store("k", "v")
    assert mode(tmp_path / "data" / "engram") == 0o700
    assert mode(tmp_path / "data" / "engram" / "engram.db") == 0o600


def test_sqlite_files_are_owner_only_whatever_the_umask(tmp_path: Path, open_umask) -> None:
    path = tmp_path / "x.db"
    with engram.Memory(f"sqlite:///{path}") as memory:
        memory.store("k", "v")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(p.exists() for p in files)
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with engram.Memory(f"sqlite:///{path}"):
        pass
    path.chmod(0o640)  # the owner chose to share it with the group
    with engram.Memory(f"sqlite:///{path}") as memory:
        memory.store("k", "v")
    assert mode(path) == 0o640


def test_server_files_are_owner_only(tmp_path: Path, open_umask) -> None:
    pytest.importorskip("cryptography")
    from engram.server.tenancy import Tenancy

    tenancy = Tenancy(engram.load_settings(database_url=f"sqlite:///{tmp_path / 'engram.db'}", embedder="none"))
    try:
        project = tenancy.control.create_project("alpha")
        tenancy.memory(project.id).store("k", "v")
        tenancy.control.set_variable(project.id, "token", "s3cret")  # makes the key file
    finally:
        tenancy.close()
    assert mode(tmp_path / "engram-control.db") == 0o600
    assert mode(tmp_path / "engram-secret.key") == 0o600
    assert mode(tmp_path / "engram-projects") == 0o700  # engram's own directory: made, privately
    assert mode(tmp_path / "engram-projects" / f"{project.id}.db") == 0o600


def test_the_server_refuses_a_missing_directory(tmp_path: Path) -> None:
    from engram.server.tenancy import Tenancy

    with pytest.raises(engram.ConfigError, match=f"directory {tmp_path / 'nope'} does not exist"):
        Tenancy(engram.load_settings(database_url=f"sqlite:///{tmp_path / 'nope' / 'engram.db'}"))


def test_locations_are_absolute_and_hide_passwords(tmp_path: Path, monkeypatch) -> None:
    from engram.stores._files import location

    monkeypatch.chdir(tmp_path)
    assert location("sqlite:///rel.db") == str(tmp_path / "rel.db")
    assert location(f"sqlite:///{tmp_path / 'abs.db'}?busy_timeout=5") == str(tmp_path / "abs.db")
    assert location("json:///rel/dir") == str(tmp_path / "rel" / "dir")
    assert location("postgresql://app:hunter2@db/engram") == "postgresql://app:***@db/engram"
    assert location("memory://") == "memory://"
