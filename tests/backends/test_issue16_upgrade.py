"""Stores written before issue 16 (sessions without user/agent, profiles without a schema,
no runs) upgrade in place and keep their records, on SQLite and PostgreSQL."""

from __future__ import annotations

import engram
from engram.stores.postgres import sql as pg
from engram.stores.sqlite.schema import MIGRATIONS

from test_issue15_upgrade import drop_entry_context, old_sqlite_store  # tests/backends is on sys.path (no package)

OLD_SQLITE = 5  # the schema before issue 16
OLD_POSTGRES = 4


def _check_upgraded(memory: engram.Memory) -> None:
    session = memory.session_get("old")
    assert (session.status, session.user_id, session.agent_id) == ("active", None, None)
    assert memory.profile("ana").traits["city"].value == "Oslo" and memory.profile("ana").schema_name is None
    assert [m.content for m in memory.history("old")] == ["an old message"]
    assert [s.id for s in memory.sessions(user_id="ana")] == []
    memory.add_message("new", "user", "hi", user_id="ana")
    assert [s.id for s in memory.sessions(user_id="ana")] == ["new"]
    run = memory.run_start("old")
    memory.run_pause(run.id, {"x": 1})
    assert memory.run_resume(run.id).state == {"x": 1}
    assert memory.session_delete("old") and memory.run_get(run.id) is None


def test_a_sqlite_store_from_before_is_upgraded(tmp_path) -> None:
    path = tmp_path / "old.db"
    conn = old_sqlite_store(path, OLD_SQLITE)
    conn.execute("INSERT INTO sessions (id, status, started_at) VALUES ('old', 'active', '2026-01-01T00:00:00+00:00')")
    conn.execute(
        "INSERT INTO messages (seq, id, session_id, role, content, created_at, sess, usr)"
        " VALUES (1, 'm1', 'old', 'user', 'an old message', '2026-01-01T00:00:00+00:00', '1', '')"
    )
    conn.execute(
        "INSERT INTO profiles (user_id, traits, updated_at) VALUES ('ana', ?, '2026-01-01T00:00:00+00:00')",
        ('{"city": {"value": "Oslo", "source_message_ids": ["m1"], "updated_at": "2026-01-01T00:00:00+00:00"}}',),
    )
    conn.commit()
    conn.close()
    with engram.Memory(f"sqlite:///{path}") as memory:
        assert memory.backend.schema_version() == len(MIGRATIONS)
        _check_upgraded(memory)


def test_a_postgres_store_from_before_is_upgraded(postgres_url) -> None:
    with engram.Memory(postgres_url) as memory, memory.backend._conn("test") as conn:
        # Back to the schema as it was before issue 16, with records in it.
        conn.execute("DROP TABLE engram_runs")
        conn.execute("DROP TABLE engram_blob_chunks, engram_blobs")  # issue 12's, later still
        drop_entry_context(conn)  # issue 15's, later still
        conn.execute("DROP INDEX engram_sessions_by_user, engram_sessions_by_agent")
        conn.execute("ALTER TABLE engram_sessions DROP COLUMN user_id, DROP COLUMN agent_id")
        conn.execute("ALTER TABLE engram_profiles DROP COLUMN schema_name, DROP COLUMN schema_version")
        conn.execute("UPDATE engram_schema SET version = %s", (OLD_POSTGRES,))
        conn.execute("INSERT INTO engram_sessions (id, status, started_at) VALUES ('old', 'active', now())")
        conn.execute(
            "INSERT INTO engram_profiles (user_id, traits, updated_at) VALUES ('ana', %s::json, now())",
            ('{"city": {"value": "Oslo", "source_message_ids": [], "updated_at": "2026-01-01T00:00:00+00:00"}}',),
        )
    with engram.Memory(postgres_url) as memory:
        memory.add_message("old", "user", "an old message")
        assert memory.backend.schema_version() == len(pg.MIGRATIONS)
        _check_upgraded(memory)
