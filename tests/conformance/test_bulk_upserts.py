"""Upserts inside one big batch behave exactly like the same stores one by one.

Batches here are large enough (200 items) to take the backends' bulk paths
(SQLite indexes a batch's new rows in one statement, see
``engram.stores.sqlite.bulk``; PostgreSQL stages parts of it with ``COPY``), where a key repeated in the batch, or a key
already stored, is the case a fast path gets wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engram.stores.postgres import bulk as _postgres_bulk

BATCH = 200


@pytest.fixture(autouse=True)
def small_parts(monkeypatch) -> None:
    """PostgreSQL sends a large batch in parts (``stores/postgres/bulk.py``): small parts
    here, so a key repeated or already stored falls in a part of its own."""
    monkeypatch.setattr(_postgres_bulk, "FIRST_PART_ROWS", 7)
    monkeypatch.setattr(_postgres_bulk, "PART_ROWS", 31)


def _filler(prefix: str, n: int = BATCH, namespace: str = "ns") -> list[dict]:
    return [
        {"key": f"{prefix}-{i}", "content": f"filler text number {i} about {prefix}", "namespace": namespace,
         "metadata": {"i": i}}
        for i in range(n)
    ]  # fmt: skip


def _found(memory, query: str, namespace: str = "ns") -> list[str]:
    return sorted(h.entry.key for h in memory.search(query, namespace=namespace, limit=50, mode="fts").results)


def test_a_key_repeated_in_one_batch_is_upserted_in_order(memory):
    items = _filler("a")
    items.insert(10, {"key": "twice", "content": "first version pelican", "namespace": "ns", "metadata": {"v": 1}})
    items.insert(150, {"key": "twice", "content": "second version albatross", "namespace": "ns"})
    assert memory.store_many(items) == BATCH + 2

    entry = memory.get("twice", namespace="ns")
    assert entry.content == "second version albatross"
    assert entry.metadata == {"v": 1}  # the repeat left metadata out: the first one's stays
    assert _found(memory, "albatross") == ["twice"]
    assert _found(memory, "pelican") == []
    assert len(memory.list(namespace="ns", limit=1000)) == BATCH + 1
    assert len(memory.search("filler", namespace="ns", limit=1000, mode="fts").results) == BATCH


def test_a_key_repeated_with_empty_metadata_clears_it(memory):
    items = _filler("b")
    items.append({"key": "k", "content": "one", "namespace": "ns", "metadata": {"topic": "x"}})
    items.append({"key": "k", "content": "two", "namespace": "ns", "metadata": {}})
    memory.store_many(items)
    assert memory.get("k", namespace="ns").metadata == {}
    assert memory.list(namespace="ns", metadata={"topic": "x"}) == []


def test_a_batch_over_existing_keys_keeps_ids_created_at_and_the_metadata_rule(memory):
    kept = memory.store("kept", "old words giraffe", namespace="ns", metadata={"topic": "zoo"})
    cleared = memory.store("cleared", "old words giraffe", namespace="ns", metadata={"topic": "zoo"})
    replaced = memory.store("replaced", "old words giraffe", namespace="ns", metadata={"topic": "zoo"})
    items = _filler("c")
    items[5:5] = [
        {"key": "kept", "content": "new words hippopotamus", "namespace": "ns"},
        {"key": "cleared", "content": "new words hippopotamus", "namespace": "ns", "metadata": {}},
        {"key": "replaced", "content": "new words hippopotamus", "namespace": "ns", "metadata": {"topic": "river"}},
    ]
    assert memory.store_many(items) == BATCH + 3

    for before, metadata in ((kept, {"topic": "zoo"}), (cleared, {}), (replaced, {"topic": "river"})):
        after = memory.get(before.key, namespace="ns")
        assert (after.id, after.created_at) == (before.id, before.created_at)
        assert after.updated_at > before.updated_at
        assert after.content == "new words hippopotamus"
        assert after.metadata == metadata
    assert _found(memory, "hippopotamus") == ["cleared", "kept", "replaced"]
    assert _found(memory, "giraffe") == []
    assert [e.key for e in memory.list(namespace="ns", metadata={"topic": "zoo"})] == ["kept"]
    assert len(memory.list(namespace="ns", limit=1000)) == BATCH + 3
    # The index holds each row once: one more update leaves no trace of the batch's words.
    memory.store("kept", "final words okapi", namespace="ns")
    assert _found(memory, "hippopotamus") == ["cleared", "replaced"]
    assert _found(memory, "okapi") == ["kept"]


def test_a_second_batch_over_the_first_reindexes_every_row(memory):
    memory.store_many(_filler("d"))
    again = [dict(it, content=f"rewritten {it['key']} flamingo") for it in _filler("d")]
    memory.store_many(again)
    assert len(memory.search("flamingo", namespace="ns", limit=1000, mode="fts").results) == BATCH
    assert memory.search("filler", namespace="ns", limit=1000, mode="fts").results == []


def test_single_writes_after_a_batch_are_indexed(memory):
    memory.store_many(_filler("e", namespace="other"))
    memory.store("solo", "a lone meerkat", namespace="ns")
    assert _found(memory, "meerkat") == ["solo"]
    memory.store("solo", "a lone wombat", namespace="ns")
    assert _found(memory, "meerkat") == []
    assert _found(memory, "wombat") == ["solo"]
    assert memory.delete("e-3", namespace="other")
    assert "e-3" not in _found(memory, "filler", namespace="other") and len(
        memory.search("filler", namespace="other", limit=1000, mode="fts").results
    ) == BATCH - 1


def test_import_over_a_store_repeating_keys_upserts_them(memory, tmp_path: Path):
    memory.store_many(_filler("f"))
    memory.store("f-7", "changed before export zebra", namespace="ns", metadata={"x": 1})
    path = tmp_path / "export.jsonl"
    memory.export(path)
    # The file again, with its entry lines twice: importing upserts on (namespace, key).
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines[1:]) + "".join(lines[1:]), encoding="utf-8")
    before = {e.key: (e.id, e.created_at) for e in memory.list(namespace="ns", limit=1000)}
    memory.import_(path)
    after = memory.list(namespace="ns", limit=1000)
    assert {e.key: (e.id, e.created_at) for e in after} == before
    assert _found(memory, "zebra") == ["f-7"]
    assert len(memory.search("filler", namespace="ns", limit=1000, mode="fts").results) == BATCH - 1


def test_a_batch_all_with_metadata_over_existing_and_repeated_keys(memory):
    before = memory.store("old", "old words giraffe", namespace="ns", metadata={"topic": "zoo"})
    items = _filler("g")
    items[3:3] = [
        {"key": "old", "content": "new words hippopotamus", "namespace": "ns", "metadata": {"topic": "river"}},
        {"key": "rep", "content": "first pelican", "namespace": "ns", "metadata": {"v": 1}},
    ]
    items.append({"key": "rep", "content": "second albatross", "namespace": "ns", "metadata": {"v": 2}})
    items.append({"key": "old", "content": "newest words okapi", "namespace": "ns", "metadata": {}})
    assert memory.store_many(items) == BATCH + 4

    after = memory.get("old", namespace="ns")
    assert (after.id, after.created_at, after.content, after.metadata) == (
        before.id, before.created_at, "newest words okapi", {}
    )
    rep = memory.get("rep", namespace="ns")
    assert (rep.content, rep.metadata) == ("second albatross", {"v": 2})
    assert _found(memory, "okapi") == ["old"]
    assert _found(memory, "giraffe") == _found(memory, "hippopotamus") == _found(memory, "pelican") == []
    assert _found(memory, "albatross") == ["rep"]
    assert len(memory.list(namespace="ns", limit=1000)) == BATCH + 2


def test_a_batch_all_without_metadata_keeps_what_is_stored(memory):
    memory.store("old", "old words giraffe", namespace="ns", metadata={"topic": "zoo"})
    items = [{k: v for k, v in it.items() if k != "metadata"} for it in _filler("h")]
    items += [
        {"key": "old", "content": "new words hippopotamus", "namespace": "ns"},
        {"key": "h-1", "content": "again hippopotamus", "namespace": "ns"},
    ]
    assert memory.store_many(items) == BATCH + 2
    assert memory.get("old", namespace="ns").metadata == {"topic": "zoo"}
    assert memory.get("h-1", namespace="ns").metadata == {}
    assert memory.get("h-2", namespace="ns").metadata == {}
    assert _found(memory, "hippopotamus") == ["h-1", "old"]
    assert _found(memory, "giraffe") == []
