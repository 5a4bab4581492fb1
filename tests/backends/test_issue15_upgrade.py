"""Stores written before issue 15 (entries without a context column) upgrade in place, on
SQLite and PostgreSQL: old entries read back with context None and keep their vectors, whose
hashes (of the content alone, the text an entry without context embeds) need no migration."""

from __future__ import annotations

import sqlite3

import numpy as np

import engram
from engram.embeddings.cache import content_hash
from engram.search.context import embedded_text
from engram.search.vector import to_blob
from engram.stores.postgres import sql as pg
from engram.stores.sqlite.schema import MIGRATIONS
from engram.stores.sqlite.store import namespace_token

OLD_SQLITE = 8  # the schema before issue 15
OLD_POSTGRES = 7
VECTOR = np.array([0.6, 0.8, 0.0], dtype=np.float32)


def _memory(url: str) -> engram.Memory:
    return engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))


def _check_upgraded(memory: engram.Memory) -> None:
    old = memory.get("old")
    assert (old.content, old.context) == ("an old memory", None)
    assert [e.context for e in memory.list()] == [None]
    # The old vector is kept and still found by the hash of the text it embeds.
    assert np.allclose(memory.backend.get_vectors([("default", "old")])[("default", "old")], VECTOR)
    digest = content_hash(embedded_text("an old memory", None))
    assert digest == content_hash("an old memory")
    assert list(memory.backend.vectors_by_hash([digest])) == [digest]
    assert [h.entry.key for h in memory.search("", vector=VECTOR, mode="vector").results] == ["old"]
    # Storing it again as it was keeps the vector; with a context it goes (it embedded other text).
    memory.store("old", "an old memory")
    assert memory.backend.count_vectors("default") == 1
    memory.store("old", "an old memory", context="a title")
    assert memory.get("old").context == "a title"
    assert memory.backend.count_vectors("default") == 0
    memory.store("new", "a new memory", context="its title", embedding=[0.0, 0.0, 1.0])
    assert (memory.get("new").context, memory.backend.count_vectors("default")) == ("its title", 1)


def drop_entry_context(conn) -> None:
    """Take a PostgreSQL store's schema back to before issue 15 (its migration 8 undone)."""
    conn.execute("DROP TRIGGER engram_entries_vector_stale ON engram_entries")
    conn.execute(
        "CREATE TRIGGER engram_entries_vector_stale AFTER UPDATE OF content ON engram_entries"
        " FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content)"
        " EXECUTE FUNCTION engram_drop_stale_vector()"
    )
    conn.execute("ALTER TABLE engram_entries DROP COLUMN context")


def old_sqlite_store(path, version: int) -> sqlite3.Connection:
    """A SQLite database as the code of schema ``version`` left it (its migrations, its version row)."""
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:version]:
        conn.executescript(script)
    conn.execute("CREATE TABLE engram_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO engram_schema (version) VALUES (?)", (version,))
    return conn


def test_a_sqlite_store_from_before_is_upgraded(tmp_path) -> None:
    path = tmp_path / "old.db"
    conn = old_sqlite_store(path, OLD_SQLITE)
    row = conn.execute(
        "INSERT INTO entries (id, namespace, key, content, created_at, updated_at, ns)"
        " VALUES ('e1', 'default', 'old', 'an old memory', '2026-01-01T00:00:00+00:00',"
        " '2026-01-01T00:00:00+00:00', ?) RETURNING rowid",
        (namespace_token("default"),),
    ).fetchone()
    conn.execute("INSERT INTO vector_model (id, name, dimensions) VALUES (1, 'external', 3)")
    conn.execute(
        "INSERT INTO entry_vectors (rowid, namespace, content_hash, vector) VALUES (?, 'default', ?, ?)",
        (row[0], content_hash("an old memory"), to_blob(VECTOR)),
    )
    conn.commit()
    conn.close()
    with _memory(f"sqlite:///{path}") as memory:
        assert memory.backend.schema_version() == len(MIGRATIONS)
        _check_upgraded(memory)


def test_a_postgres_store_from_before_is_upgraded(postgres_url) -> None:
    with _memory(postgres_url) as memory:
        memory.store("old", "an old memory", embedding=VECTOR)
        with memory.backend._conn("test") as conn:
            drop_entry_context(conn)  # the entry and its vector stay
            conn.execute("UPDATE engram_schema SET version = %s", (OLD_POSTGRES,))
    with _memory(postgres_url) as memory:
        assert memory.backend.schema_version() == len(pg.MIGRATIONS)
        _check_upgraded(memory)
