"""SQLite's bulk entry path (``engram.stores.sqlite.bulk``): the index matches the table
after every kind of batch, and a failed batch leaves the schema and data as they were."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engram import Memory
from engram._time import utcnow
from engram.errors import Conflict
from engram.models import Entry
from engram.stores.sqlite import bulk as _sqlite_bulk

N = 300


def _items(prefix: str, n: int = N) -> list[dict]:
    return [{"key": f"{prefix}{i}", "content": f"words of {prefix} entry {i}", "namespace": f"ns{i % 3}",
             "metadata": {"i": i}} for i in range(n)]  # fmt: skip


def _index_matches_table(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        # rank 1: compare the index with the content of ``entries`` too, row by row.
        conn.execute("INSERT INTO entries_fts (entries_fts, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'entries_fts_insert'").fetchone() == (1,)
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> tuple[Memory, Path]:
    path = tmp_path / "bulk.db"
    memory = Memory(f"sqlite:///{path}")
    yield memory, path
    memory.close()


def test_the_index_matches_the_table_after_new_updated_and_repeated_rows(db):
    memory, path = db
    assert N >= _sqlite_bulk.MIN_ROWS
    memory.store_many(_items("a"))
    items = _items("a")[:100] + _items("b") + _items("a")[50:60]  # updates, new rows, repeats
    items += [dict(it, content="again " + it["content"]) for it in _items("b")[:20]]
    memory.store_many(items)
    _index_matches_table(path)
    assert memory.search("again", limit=100, mode="fts").count == 20


def test_a_failed_batch_changes_nothing_and_keeps_the_trigger(db):
    memory, path = db
    memory.store_many(_items("a"))
    taken = memory.get("a1", namespace="ns1")
    now = utcnow()
    batch = [
        Entry(id=f"00000000-0000-4000-8000-{i:012d}", key=f"new{i}", namespace="ns0", content=f"fresh {i}",
              metadata={}, created_at=now, updated_at=now)
        for i in range(N)
    ]  # fmt: skip
    batch[-1] = batch[-1].model_copy(update={"id": taken.id})  # another entry's id: a constraint fails late
    with pytest.raises(Conflict):
        memory.backend.put_entries(batch, now=now)
    assert memory.get("new0", namespace="ns0") is None
    _index_matches_table(path)
    memory.store("later", "a single write after the failure", namespace="ns0")
    assert [h.entry.key for h in memory.search("single", namespace="ns0", mode="fts").results] == ["later"]
    _index_matches_table(path)
