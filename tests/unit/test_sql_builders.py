"""Pure SQL builders of the SQLite backend: (...) -> (sql, params), no database."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from engram.stores.base import EntryQuery, SessionQuery, TaskQuery
from engram.stores.sqlite import sql as _sql

NOW = "2026-01-02T03:04:05.000006+00:00"


def placeholders(sql: str) -> int:
    """How many parameters SQLite binds: a bare ``?`` takes the next index, ``?N`` names index N (reusable)."""
    largest = 0
    for number in re.findall(r"\?(\d*)", sql):
        largest = max(largest, int(number)) if number else largest + 1
    return largest


@pytest.mark.parametrize(
    "key, path",
    [
        ("topic", '$."topic"'),
        ("user.name", '$."user"."name"'),
        ("a.b.c", '$."a"."b"."c"'),
        ("source-id", '$."source-id"'),
    ],
)
def test_json_path(key, path):
    assert _sql.json_path(key) == path


def test_metadata_conditions_per_type():
    sql, params = _sql.metadata_conditions({"s": "x", "i": 3, "f": 1.5, "t": True, "n": None, "b": False})
    clauses = sql.split(" AND json_type")
    assert placeholders(sql) == len(params)
    assert params == [
        '$."s"', '$."s"', "x",
        '$."i"', '$."i"', 3,
        '$."f"', '$."f"', 1.5,
        '$."t"', "true",
        '$."n"',
        '$."b"', "false",
    ]  # fmt: skip
    assert "json_type(e.metadata, ?) = 'text'" in sql
    assert "IN ('integer', 'real')" in sql
    assert "= 'null'" in sql
    assert len(clauses) == 6


def test_metadata_conditions_bool_is_not_compared_as_a_number():
    sql, params = _sql.metadata_conditions({"flag": True})
    assert sql == "json_type(e.metadata, ?) = ?"
    assert params == ['$."flag"', "true"]
    assert "json_extract" not in sql


def test_metadata_conditions_other_column():
    sql, _ = _sql.metadata_conditions({"a": 1}, column="s.metadata")
    assert "s.metadata" in sql and "e.metadata" not in sql


def test_metadata_values_never_reach_the_sql_text():
    evil = "x'); DROP TABLE entries; --"
    sql, params = _sql.metadata_conditions({"k": evil})
    assert evil not in sql
    assert evil in params


def test_list_entries_sql_minimal():
    sql, params = _sql.list_entries_sql(EntryQuery(), NOW)
    assert sql.startswith(f"SELECT {_sql.ENTRY_COLUMNS} FROM entries e WHERE {_sql.LIVE}")
    assert "ORDER BY e.updated_at DESC, e.rowid DESC LIMIT ? OFFSET ?" in sql
    assert params == [NOW, 20, 0]
    assert placeholders(sql) == len(params)


def test_list_entries_sql_every_filter():
    query = EntryQuery(namespace="ns", limit=5, offset=10, metadata={"a.b": "v"}, key_prefix="user:%_")
    sql, params = _sql.list_entries_sql(query, NOW)
    assert placeholders(sql) == len(params)
    assert params == [NOW, "ns", 7, "user:%_", '$."a"."b"', '$."a"."b"', "v", 5, 10]
    assert "e.namespace = ?" in sql
    assert "substr(e.key, 1, ?) = ?" in sql
    assert "LIKE" not in sql  # no wildcards to escape
    assert "user:" not in sql and "ns'" not in sql


def test_search_sql():
    sql, params = _sql.search_sql('{key content} : ("a")', {"tag": "x"}, 7, NOW)
    assert placeholders(sql) == len(params)
    assert params == ['{key content} : ("a")', NOW, '$."tag"', '$."tag"', "x", 7]
    assert "entries_fts MATCH ?" in sql
    assert "bm25(entries_fts, 0.0, 1.0, 1.0)" in sql
    assert sql.endswith("ORDER BY rank LIMIT ?")
    assert "JOIN entries e ON e.rowid = entries_fts.rowid" in sql
    assert "namespace" not in sql.split(" WHERE ")[1]  # matched inside the index, never filtered after it


def test_search_sql_without_metadata():
    sql, params = _sql.search_sql("m", {}, 10, NOW)
    assert params == ["m", NOW, 10]
    assert "json_" not in sql


def test_namespace_column_never_scores():
    assert _sql.BM25_WEIGHTS[0] == 0.0
    assert all(w > 0 for w in _sql.BM25_WEIGHTS[1:])


def test_list_sessions_sql():
    sql, params = _sql.list_sessions_sql(SessionQuery())
    assert "WHERE" not in sql
    assert params == [20, 0]
    before = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sql, params = _sql.list_sessions_sql(SessionQuery(status="ended", ended_before=before, limit=3, offset=1))
    assert placeholders(sql) == len(params)
    assert params == ["ended", "2026-01-01T00:00:00.000000+00:00", 3, 1]
    assert "ended_at IS NOT NULL AND ended_at < ?" in sql
    assert "ORDER BY started_at DESC, id" in sql


def test_list_tasks_sql():
    sql, params = _sql.list_tasks_sql(TaskQuery())
    assert "WHERE" not in sql
    assert params == [20, 0]
    sql, params = _sql.list_tasks_sql(TaskQuery(session_id="s1", status="running", limit=2, offset=4))
    assert placeholders(sql) == len(params)
    assert params == ["s1", "running", 2, 4]
    assert "session_id = ?" in sql and "status = ?" in sql
    assert "ORDER BY created_at DESC, id" in sql


def test_upsert_keeps_id_and_created_at_of_live_rows():
    sql = _sql.UPSERT_ENTRY
    assert placeholders(sql) == 10
    assert "ON CONFLICT (namespace, key) DO UPDATE" in sql
    assert "context = excluded.context" in sql  # replaced like the content (issue 15)
    assert "THEN excluded.id ELSE entries.id" in sql
    assert "THEN excluded.created_at ELSE entries.created_at" in sql
    assert "RETURNING id, created_at" in _sql.UPSERT_ENTRY_RETURNING
    # Omitted metadata (NULL) keeps a live entry's metadata; '{}' clears it (issue 9, item 11).
    assert "WHEN ?5 IS NOT NULL OR entries.expires_at <= excluded.updated_at" in sql


def test_builders_do_no_io(monkeypatch):
    import sqlite3

    def refuse(*args, **kwargs):
        raise AssertionError("a builder opened a database")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    _sql.list_entries_sql(EntryQuery(metadata={"a": 1}), NOW)
    _sql.search_sql("m", {"a": 1}, 1, NOW)
    _sql.list_sessions_sql(SessionQuery(status="active"))
    _sql.list_tasks_sql(TaskQuery(status="pending"))
