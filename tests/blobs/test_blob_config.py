"""Which blob store ``storage.blob_store`` chooses, where it keeps files, and its limits."""

from __future__ import annotations

import pytest

import engram
from engram.blobs.opening import default_root
from engram.config import default_data_dir


def test_defaults_follow_the_database(tmp_path):
    with engram.Memory("memory://") as m:
        stats = m.blobs.stats()
        assert (stats.backend, stats.blob_limit, stats.total_limit) == ("in-memory", 5 * 2**20, 50 * 2**20)
    with engram.Memory(f"sqlite:///{tmp_path / 'agent.db'}") as m:
        assert not (tmp_path / "agent-blobs").exists()  # opening makes no directory; the first put does
        ref = m.blobs.put(b"beside the database")
        stats = m.blobs.stats()
        assert (stats.backend, stats.location, stats.blob_limit) == ("local", str(tmp_path / "agent-blobs"), 100 * 2**20)
        assert m.blobs.path(ref).is_relative_to(tmp_path / "agent-blobs" / "default")


def test_postgres_keeps_blobs_in_its_tables_unless_told_otherwise(postgres_url):
    with engram.Memory(postgres_url) as m:
        ref = m.blobs.put(b"shared by every server")
        assert m.blobs.stats().backend == "database"
    with engram.Memory(postgres_url) as again:
        assert again.blobs.get(ref) == b"shared by every server"


def test_server_databases_get_a_directory_each_in_the_data_dir():
    a = default_root("postgresql://u:secret@db1/x")
    b = default_root("postgresql://u:secret@db2/x")
    assert a.parent == b.parent == default_data_dir() / "blobs" and a != b and "secret" not in str(a)
    assert default_root("postgresql://u:other@db1/x") == a  # the password is not part of the name


def test_the_config_file_with_dexto_spellings(tmp_path, monkeypatch):
    config = tmp_path / "engram.yaml"
    config.write_text(
        "database_url: sqlite:///${DIR}/e.db\n"
        "storage:\n  blobStore:\n    type: local\n    storePath: ${DIR}/files\n"
        "    maxBlobSize: 100\n    maxTotalSize: 150\n    cleanupAfterDays: 7\n"
    )
    monkeypatch.setenv("DIR", str(tmp_path))
    with engram.Memory(settings=engram.load_settings(config)) as m:
        m.blobs.put(b"x" * 100)
        with pytest.raises(engram.ContentTooLarge, match="blob limit is 100 bytes"):
            m.blobs.put(b"y" * 101)
        with pytest.raises(engram.ContentTooLarge, match="total blob limit of 150 bytes"):
            m.blobs.put(b"z" * 51)
        assert m.blobs.cleanup_after_days == 7 and m.blobs.stats().location == str(tmp_path / "files")


def test_database_blobs_are_in_the_database_file(tmp_path):
    settings = engram.load_settings(database_url=f"sqlite:///{tmp_path / 'd.db'}", storage={"blob_store": {"type": "database"}})
    with engram.Memory(settings=settings) as m:
        ref = m.blobs.put(b"in a row")
        assert m.blobs.stats().location == str((tmp_path / "d.db").resolve())
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []
    with engram.Memory(settings=settings) as again:
        assert again.blobs.get(ref) == b"in a row"
