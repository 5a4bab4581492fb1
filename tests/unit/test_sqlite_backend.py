"""SQLite backend specifics: files, WAL, schema migrations, transactions, driver errors."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

import engram
from engram.errors import ConfigError
from engram.models import Entry
from engram.search.query import parse
from engram.stores.sqlite import SQLiteStore
from engram.stores.sqlite.schema import MIGRATIONS

# Which directories a store may create: tests/unit/test_paths.py.


def test_sqlite_uses_wal_and_a_versioned_schema(tmp_path):
    path = tmp_path / "x.db"
    with engram.Memory(f"sqlite:///{path}") as memory:
        assert memory.backend.schema_version() == len(MIGRATIONS)
    with engram.Memory(f"sqlite:///{path}") as memory:  # migrating again is a no-op
        assert memory.backend.schema_version() == len(MIGRATIONS)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM engram_schema").fetchone()[0] == 1
    finally:
        conn.close()


def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "x.db"
    with engram.Memory(f"sqlite:///{path}"):
        pass
    conn = sqlite3.connect(path)
    conn.execute("UPDATE engram_schema SET version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="schema version 999.*upgrade engram"):
        engram.Memory(f"sqlite:///{path}")


def test_sqlite_driver_errors_are_translated(tmp_path):
    path = tmp_path / "x.db"
    memory = engram.Memory(f"sqlite:///{path}")
    memory.close()
    with pytest.raises(engram.BackendError, match="closed"):
        memory.store("k", "v")


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(engram.BackendError) as info:
        engram.Memory(f"sqlite:///{path}")
    assert "not a database" in str(info.value)


def _entry(key: str, id: str) -> Entry:
    now = datetime.now(timezone.utc)
    return Entry(id=id, key=key, namespace="default", content=f"content of {key}", created_at=now, updated_at=now)


def test_a_batch_is_one_transaction(tmp_path):
    store = SQLiteStore(tmp_path / "x.db")
    try:
        now = datetime.now(timezone.utc)
        store.put_entries([_entry("existing", "id-0")], now=now)
        # The third entry reuses an id: the UNIQUE constraint fails half-way through the batch.
        batch = [_entry("a", "id-1"), _entry("b", "id-2"), _entry("c", "id-1")]
        with pytest.raises(engram.Conflict):
            store.put_entries(batch, now=now)
        assert [e.key for e in store.iter_entries()] == ["existing"]
        hits = store.search_text(parse("content"), namespace=None, metadata={}, limit=10, now=now)
        assert [entry.key for entry, _ in hits] == ["existing"]  # the index rolled back too
        # The connection is usable afterwards: no transaction was left open.
        store.put_entries([_entry("d", "id-3")], now=now)
        assert sorted(e.key for e in store.iter_entries()) == ["d", "existing"]
    finally:
        store.close()


def test_writes_take_the_lock_up_front(tmp_path):
    """Another connection holding a write lock makes a writer wait, then fail cleanly as BackendError."""
    path = tmp_path / "x.db"
    with engram.Memory(f"sqlite:///{path}?busy_timeout=0.2") as memory:
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(engram.BackendError, match="locked"):
                memory.store("k", "v")
            assert memory.get("k") is None  # reads still work beside the writer (WAL)
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        memory.store("k", "v")
        assert memory.get("k").content == "v"


def test_every_thread_gets_its_own_connection(tmp_path):
    import threading

    with engram.Memory(f"sqlite:///{tmp_path / 'x.db'}") as memory:
        errors = []

        def work(n: int) -> None:
            try:
                for i in range(50):
                    memory.store(f"t{n}-{i}", "x")
                    memory.list(limit=5)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert memory.stats().entries == 200
