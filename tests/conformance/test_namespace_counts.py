"""Live entries per namespace (``Memory.namespace_counts``) and listing order (``Memory.list(order=...)``)."""

from __future__ import annotations

import time

import pytest

import engram


def tick() -> None:
    """Let the clock move so consecutive writes get distinct timestamps."""
    time.sleep(0.002)


# -- namespace_counts -------------------------------------------------------------


def test_namespace_counts_of_an_empty_store_is_empty(memory):
    assert memory.namespace_counts() == {}


def test_namespace_counts_counts_live_entries_sorted_by_name(memory):
    memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(5)], namespace="zeta")
    memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(3)], namespace="alpha")
    memory.store("only", "x", namespace="Mid")
    memory.store("k0", "updated", namespace="zeta")  # an upsert is still one entry

    counts = memory.namespace_counts()
    assert counts == {"Mid": 1, "alpha": 3, "zeta": 5}
    assert list(counts) == ["Mid", "alpha", "zeta"]  # by name (code point order, like namespaces())
    assert sum(counts.values()) == memory.stats().entries


def test_namespace_counts_leave_out_expired_entries(memory):
    memory.store("gone", "x", namespace="tmp", ttl=0.05)
    memory.store("gone", "x", namespace="mixed", ttl=0.05)
    memory.store("stays", "x", namespace="mixed")
    memory.store("stays", "x", namespace="keep")
    time.sleep(0.1)

    assert memory.namespace_counts() == {"keep": 1, "mixed": 1}
    assert memory.stats().expired_entries == 2


def test_namespace_counts_follow_deletes(memory):
    memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(4)], namespace="a")
    memory.store("k", "x", namespace="b")
    memory.delete("k0", namespace="a")
    assert memory.namespace_counts() == {"a": 3, "b": 1}
    memory.delete_namespace("a")
    assert memory.namespace_counts() == {"b": 1}
    memory.delete("k", namespace="b")
    assert memory.namespace_counts() == {}


def test_namespaces_and_namespace_counts_agree(memory):
    memory.store("x", "x", namespace="b")
    memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(3)], namespace="a")
    memory.store("short", "x", namespace="expiring", ttl=0.05)
    memory.store("x", "x", namespace="user:42")
    assert list(memory.namespace_counts()) == memory.namespaces()
    time.sleep(0.1)
    assert list(memory.namespace_counts()) == memory.namespaces() == ["a", "b", "user:42"]
    for namespace, n in memory.namespace_counts().items():
        assert len(memory.list(namespace=namespace, limit=1000)) == n


async def test_async_namespace_counts_match_sync(async_memory):
    await async_memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(3)], namespace="a")
    await async_memory.store("k", "x", namespace="b")
    assert await async_memory.namespace_counts() == async_memory.sync.namespace_counts() == {"a": 3, "b": 1}


# -- list order -------------------------------------------------------------------


def test_list_oldest_first_is_newest_first_reversed(memory):
    for key in ("a", "b", "c"):
        memory.store(key, key)
        tick()
    assert [e.key for e in memory.list(order="updated_asc")] == ["a", "b", "c"]
    assert [e.key for e in memory.list(order="updated_desc")] == ["c", "b", "a"]
    assert memory.list() == memory.list(order="updated_desc")  # the default
    memory.store("a", "updated")  # moves to the newest end
    assert [e.key for e in memory.list(order="updated_asc")] == ["b", "c", "a"]


def test_equal_updated_at_reverses_exactly(memory):
    # One store_many: every entry has the same updated_at; insertion order breaks the tie.
    memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(6)], namespace="same")
    newest = [e.key for e in memory.list(namespace="same", order="updated_desc")]
    oldest = [e.key for e in memory.list(namespace="same", order="updated_asc")]
    assert oldest == [f"k{i}" for i in range(6)]
    assert oldest == newest[::-1]


def test_oldest_first_pages_through_everything(memory):
    for i in range(7):
        memory.store(f"k{i}", "x", namespace="n")
        tick()
    memory.store("other", "x", namespace="m")
    everything = [e.key for e in memory.list(namespace="n", limit=100, order="updated_asc")]
    assert everything == [f"k{i}" for i in range(7)]
    pages = [e.key for off in range(0, 7, 3) for e in memory.list(namespace="n", limit=3, offset=off, order="updated_asc")]
    assert pages == everything
    assert memory.list(namespace="n", limit=3, offset=7, order="updated_asc") == []
    assert [e.key for e in memory.list(limit=100, order="updated_asc")] == everything + ["other"]


def test_oldest_first_keeps_filters_and_leaves_out_expired(memory):
    memory.store("user:old", "x", metadata={"topic": "food"})
    tick()
    memory.store("user:gone", "x", metadata={"topic": "food"}, ttl=0.05)
    tick()
    memory.store("user:new", "x", metadata={"topic": "food"})
    tick()
    memory.store("other", "x", metadata={"topic": "food"})
    memory.store("user:travel", "x", metadata={"topic": "travel"})
    time.sleep(0.1)
    found = memory.list(key_prefix="user:", metadata={"topic": "food"}, order="updated_asc")
    assert [e.key for e in found] == ["user:old", "user:new"]


@pytest.mark.parametrize("order", ["newest", "updated", "UPDATED_ASC", "", None, 1])
def test_a_bad_order_is_invalid_input_naming_the_allowed_ones(memory, order):
    memory.store("k", "x")
    with pytest.raises(engram.InvalidInput) as caught:
        memory.list(order=order)
    assert "updated_desc" in str(caught.value) and "updated_asc" in str(caught.value)
    assert [e.key for e in memory.list()] == ["k"]


async def test_async_list_order_matches_sync(async_memory):
    for key in ("a", "b", "c"):
        await async_memory.store(key, key)
        tick()
    assert [e.key for e in await async_memory.list(order="updated_asc")] == ["a", "b", "c"]
