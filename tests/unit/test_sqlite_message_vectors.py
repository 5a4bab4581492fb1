"""SQLite message vectors: a database made before them gets them by migration; triggers keep them true."""

from __future__ import annotations

import sqlite3

import engram
from engram.stores.sqlite.schema import MIGRATIONS


def test_a_schema_4_database_is_upgraded_and_keeps_its_messages(tmp_path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    for script in MIGRATIONS[:4]:  # the database as engram wrote it before message vectors
        conn.executescript(script)
    conn.execute("CREATE TABLE IF NOT EXISTS engram_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO engram_schema (version) VALUES (4)")
    conn.execute("INSERT INTO sessions (id, status, started_at) VALUES ('s', 'active', '2026-01-01T00:00:00+00:00')")
    conn.execute(
        "INSERT INTO messages (seq, id, session_id, role, content, created_at, sess, usr)"
        " VALUES (1, 'm1', 's', 'user', 'an old message', '2026-01-01T00:00:00+00:00', '1', '')"
    )
    conn.commit()
    conn.close()
    with engram.Memory(f"sqlite:///{path}") as memory:
        assert memory.backend.schema_version() == len(MIGRATIONS)
        memory.add_message("s", "user", "a new message", embedding=[1.0, 0.0])
        found = memory.search_messages("", mode="vector", vector=[1.0, 0.0])
        assert [h.message.content for h in found.results] == ["a new message"]
        assert memory.search_messages("old").count == 1


def test_deleting_a_session_drops_its_message_vectors(tmp_path) -> None:
    path = tmp_path / "c.db"
    with engram.Memory(f"sqlite:///{path}") as memory:
        s = memory.session_start().id
        memory.add_message(s, "user", "hello", embedding=[1.0, 0.0])
        assert memory.backend.count_message_vectors() == 1
        memory.session_end(s)
        memory.prune(older_than_days=0)  # ended before now: the session and all it holds go (FK cascade)
        assert memory.backend.count_message_vectors() == 0
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM message_vectors").fetchone()[0] == 0
    conn.close()
