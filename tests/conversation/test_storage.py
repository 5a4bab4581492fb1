"""Storage of conversation records: the contract's defaults, the SQL builders, SQLite specifics. No LLM."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

import engram
from engram.search.query import parse
from engram.stores.base import CONVERSATION, MessageQuery, PrunePlan
from engram.stores.memory import MemoryStore
from engram.stores.sqlite import chat_sql as _sql_chat


class Minimal(MemoryStore):
    """A backend written against the contract before conversation memory existed."""

    capabilities = frozenset()

    for name in (
        "append_messages", "get_message", "list_messages", "count_messages", "delete_messages", "search_messages",
        "put_summary", "get_summary", "put_profile", "get_profile", "delete_profile", "put_checkpoint",
        "get_checkpoint", "list_checkpoints", "resume_checkpoint", "delete_checkpoint", "prune_conversation",
        "prune_entries",
    ):  # fmt: skip
        locals()[name] = getattr(engram.stores.base.Store, name)
    del name


def test_a_backend_without_the_capability_still_works_and_says_unsupported():
    memory = engram.Memory(backend=Minimal())
    s = memory.session_start()
    memory.store("k", "v")
    assert memory.prune().expired_entries == 0  # the default prune_entries composes prune_expired
    assert memory.prune(dry_run=True).dry_run
    with pytest.raises(engram.Unsupported, match="conversation"):
        memory.add_message(s.id, "user", "hi")
    with pytest.raises(engram.Unsupported):
        memory.checkpoint_save(s.id, {})
    with pytest.raises(engram.Unsupported):
        memory.prune(older_than_days=1)
    with pytest.raises(engram.Unsupported):
        memory.prune(namespace="ns")
    assert issubclass(engram.Unsupported, NotImplementedError)


def test_backends_declare_the_capability():
    assert CONVERSATION in engram.Memory("memory://").backend.capabilities


def test_message_match_keeps_the_scope_inside_the_index():
    match = _sql_chat.message_match(parse("hello world"), "s1", "u1")
    assert match.startswith(f'sess : "{_sql_chat.scope_token("s1")}" AND usr : "{_sql_chat.scope_token("u1")}" AND ')
    assert match.endswith('content : (("hello" AND "world"))') or "content : (" in match
    assert _sql_chat.message_match(parse("x"), None, None) == 'content : ("x")'
    assert _sql_chat.scope_token("s1").isdigit() and _sql_chat.scope_token("s1") != _sql_chat.scope_token("s2")


def test_list_messages_sql_binds_every_value():
    sql, params, newest_first = _sql_chat.list_messages_sql(
        MessageQuery(session_id="s'; DROP", limit=5, after_seq=3, before=datetime(2026, 1, 1, tzinfo=timezone.utc))
    )
    assert "DROP" not in sql and "?" in sql
    assert params[0] == "s'; DROP" and params[-1] == 5
    assert sql.endswith("ORDER BY m.seq DESC LIMIT ?") and newest_first
    sql, params, newest_first = _sql_chat.list_messages_sql(MessageQuery(session_id="s"))
    assert "LIMIT" not in sql and params == ["s"] and not newest_first


def test_prune_builders():
    assert _sql_chat.doomed_messages_sql(PrunePlan()) is None
    assert _sql_chat.doomed_sessions_sql(PrunePlan(keep_last_per_session=2)) is None
    sql, params = _sql_chat.doomed_messages_sql(PrunePlan(keep_last_per_session=2, session_id="s"))
    assert "row_number()" in sql and params == ["s", 2]
    before = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sql, params = _sql_chat.doomed_messages_sql(PrunePlan(before=before))
    assert "session_id IN (SELECT id FROM sessions" in sql and len(params) == 2


def test_sqlite_full_text_index_stays_consistent(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with engram.Memory(url) as memory:
        sessions = [memory.session_start() for _ in range(3)]
        for s in sessions:
            memory.add_messages([{"role": "user", "content": f"alpha beta {i}"} for i in range(10)], session_id=s.id)
        memory.prune(keep_last_per_session=4)
        memory.delete_history(sessions[1].id)
        memory.session_end(sessions[2].id)
        memory.prune(older_than_days=0, session_id=sessions[2].id)  # the session goes, its messages by cascade
        memory.vacuum()
        assert memory.search_messages("alpha").count == 4
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 4
    conn.close()


def test_sqlite_scoped_search_uses_the_index(tmp_path):
    with engram.Memory(f"sqlite:///{tmp_path / 'p.db'}") as memory:
        s = memory.session_start()
        memory.add_message(s.id, "user", "hello", user_id="u")
        sql, params = _sql_chat.search_messages_sql(_sql_chat.message_match(parse("hello"), s.id, "u"), 10)
        plan = " ".join(str(r) for r in memory.backend._read("plan", "EXPLAIN QUERY PLAN " + sql, params))
        assert "VIRTUAL TABLE INDEX" in plan
        sql, params, _ = _sql_chat.list_messages_sql(MessageQuery(session_id=s.id, limit=50))
        plan = " ".join(str(r) for r in memory.backend._read("plan", "EXPLAIN QUERY PLAN " + sql, params))
        assert "messages_by_session" in plan
