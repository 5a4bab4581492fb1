"""Upsert keeps what the caller did not send: metadata left out (None) stays, ``{}`` clears it.

One rule on every backend, through ``store`` and ``store_many``, sync and async.
"""

from __future__ import annotations

import time


def test_store_without_metadata_keeps_the_old_metadata(memory):
    first = memory.store("k", "one", namespace="ns", metadata={"topic": "food", "n": 1})
    second = memory.store("k", "two", namespace="ns")

    assert second.metadata == {"topic": "food", "n": 1}
    assert (second.id, second.created_at, second.content) == (first.id, first.created_at, "two")
    stored = memory.get("k", namespace="ns")
    assert stored == second
    assert [e.key for e in memory.list(metadata={"topic": "food"})] == ["k"]


def test_store_with_empty_metadata_clears_it(memory):
    memory.store("k", "one", metadata={"topic": "food"})
    cleared = memory.store("k", "two", metadata={})

    assert cleared.metadata == {}
    assert memory.get("k").metadata == {}
    assert memory.list(metadata={"topic": "food"}) == []


def test_store_with_metadata_replaces_it_whole(memory):
    memory.store("k", "one", metadata={"a": 1, "b": 2})
    assert memory.store("k", "two", metadata={"b": 3}).metadata == {"b": 3}
    assert memory.get("k").metadata == {"b": 3}


def test_a_new_entry_without_metadata_has_none(memory):
    assert memory.store("new", "x").metadata == {}
    assert memory.get("new").metadata == {}


def test_an_expired_entry_is_not_a_source_of_metadata(memory):
    memory.store("k", "old", metadata={"stale": True}, ttl=0.05)
    time.sleep(0.12)
    fresh = memory.store("k", "new")
    assert fresh.metadata == {}
    assert memory.get("k").metadata == {}


def test_store_many_keeps_metadata_of_items_without_it(memory):
    memory.store_many(
        [
            {"key": "a", "content": "1", "metadata": {"keep": "a"}},
            {"key": "b", "content": "1", "metadata": {"keep": "b"}},
            {"key": "c", "content": "1", "metadata": {"keep": "c"}},
        ]
    )
    memory.store_many(
        [
            {"key": "a", "content": "2"},  # left out: kept
            {"key": "b", "content": "2", "metadata": {}},  # empty: cleared
            {"key": "c", "content": "2", "metadata": None},  # None: kept
            {"key": "d", "content": "2"},  # new: empty
        ]
    )
    found = {e.key: (e.content, e.metadata) for e in memory.list(limit=10)}
    assert found == {"a": ("2", {"keep": "a"}), "b": ("2", {}), "c": ("2", {"keep": "c"}), "d": ("2", {})}


def test_store_many_repeating_a_key_keeps_the_metadata_of_the_earlier_item(memory):
    memory.store_many(
        [{"key": "k", "content": "1", "metadata": {"v": 1}}, {"key": "k", "content": "2"}]
    )
    entry = memory.get("k")
    assert (entry.content, entry.metadata) == ("2", {"v": 1})


async def test_async_store_keeps_metadata_too(async_memory):
    await async_memory.store("k", "one", metadata={"v": 1})
    again = await async_memory.store("k", "two")
    assert again.metadata == {"v": 1}
    assert (await async_memory.get("k")).metadata == {"v": 1}
    assert (await async_memory.store("k", "three", metadata={})).metadata == {}

