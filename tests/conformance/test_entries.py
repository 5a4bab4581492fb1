"""Memory entries: upsert, store_many, get/list/delete, namespaces, TTL, validation."""

from __future__ import annotations

import math
import time
import uuid
from datetime import timezone

import pytest

import engram


def snapshot(memory: engram.Memory) -> tuple[list[engram.Entry], list[str], engram.Stats]:
    """Everything a reader can see, to prove a failed call changed nothing."""
    stats = memory.stats().model_copy(update={"size_bytes": None})
    return memory.list(limit=10_000), memory.namespaces(), stats


def tick() -> None:
    """Let the clock move so consecutive writes get distinct timestamps."""
    time.sleep(0.002)


# -- store / upsert ---------------------------------------------------------------


def test_store_returns_a_complete_entry(memory):
    entry = memory.store("colour", "The user likes teal", namespace="user:42", metadata={"src": "chat"})

    assert isinstance(entry, engram.Entry)
    assert uuid.UUID(entry.id).version == 4
    assert (entry.key, entry.namespace, entry.content) == ("colour", "user:42", "The user likes teal")
    assert entry.metadata == {"src": "chat"}
    assert entry.created_at == entry.updated_at
    assert entry.created_at.tzinfo is not None and entry.created_at.utcoffset() == timezone.utc.utcoffset(None)
    assert entry.expires_at is None
    assert memory.get("colour", namespace="user:42") == entry


def test_defaults_namespace_and_metadata(memory):
    entry = memory.store("k", "v")
    assert entry.namespace == "default"
    assert entry.metadata == {}
    assert memory.get("k") == entry
    assert memory.get("k", namespace="other") is None


def test_upsert_keeps_id_and_created_at_and_moves_updated_at(memory):
    first = memory.store("k", "one", metadata={"v": 1}, ttl=3600)
    tick()
    second = memory.store("k", "two", metadata={"v": 2})

    assert second.id == first.id
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.content == "two"
    assert second.metadata == {"v": 2}  # replaced, not merged
    assert second.expires_at is None  # the expiry is replaced too

    stored = memory.get("k")
    assert stored == second
    assert len(memory.list()) == 1


def test_same_key_in_other_namespace_is_another_entry(memory):
    a = memory.store("k", "in a", namespace="a")
    b = memory.store("k", "in b", namespace="b")
    assert a.id != b.id
    assert memory.get("k", namespace="a").content == "in a"
    assert memory.get("k", namespace="b").content == "in b"


def test_content_and_metadata_round_trip_exactly(memory):
    content = "línea 1\nline 2\ttab — emoji 🧠 \"quotes\" 'single' NUL\x00end"
    metadata = {
        "nested": {"list": [1, 2.5, "three", None, True], "deep": {"x": "é"}},
        "empty": {},
        "zero": 0,
        "false": False,
        "null": None,
        "big": 2**53,
    }
    memory.store("k", content, metadata=metadata)
    entry = memory.get("k")
    assert entry.content == content
    assert entry.metadata == metadata
    assert type(entry.metadata["nested"]["list"][1]) is float
    assert type(entry.metadata["false"]) is bool


def test_names_at_the_limit_are_accepted(memory):
    key = "k" * 256
    namespace = "n" * 256
    memory.store(key, "v", namespace=namespace)
    assert memory.get(key, namespace=namespace).key == key
    assert memory.namespaces() == [namespace]


def test_unicode_keys_and_namespaces(memory):
    memory.store("ключ/é 🔑", "v", namespace="用户:1")
    assert memory.get("ключ/é 🔑", namespace="用户:1").content == "v"
    assert memory.namespaces() == ["用户:1"]


def test_content_at_the_size_limit_is_accepted(memory_factory):
    memory = memory_factory(max_content_bytes=100)
    memory.store("k", "x" * 100)
    assert memory.get("k").content == "x" * 100


# -- store_many --------------------------------------------------------------------


def test_store_many_stores_every_item(memory):
    items = [{"key": f"k{i}", "content": f"content {i}", "metadata": {"i": i}} for i in range(25)]
    assert memory.store_many(items) == 25
    assert len(memory.list(limit=100)) == 25
    assert memory.get("k7").metadata == {"i": 7}
    assert memory.get("k7").namespace == "default"


def test_store_many_namespace_argument_and_per_item_overrides(memory):
    count = memory.store_many(
        [
            {"key": "a", "content": "x"},
            {"key": "b", "content": "y", "namespace": "special"},
            {"key": "c", "content": "z", "ttl": 3600},
        ],
        namespace="bulk",
    )
    assert count == 3
    assert memory.get("a", namespace="bulk").expires_at is None
    assert memory.get("b", namespace="special") is not None
    assert memory.get("b", namespace="bulk") is None
    c = memory.get("c", namespace="bulk")
    assert c.expires_at is not None
    assert 3590 < (c.expires_at - c.updated_at).total_seconds() <= 3600
    assert memory.namespaces() == ["bulk", "special"]


def test_store_many_per_item_ttl_expires(memory):
    memory.store_many([{"key": "short", "content": "x", "ttl": 0.05}, {"key": "long", "content": "y"}])
    time.sleep(0.1)
    assert memory.get("short") is None
    assert [e.key for e in memory.list()] == ["long"]


def test_store_many_upserts_existing_entries(memory):
    first = memory.store("k", "old")
    tick()
    memory.store_many([{"key": "k", "content": "new"}, {"key": "other", "content": "x"}])
    entry = memory.get("k")
    assert entry.content == "new"
    assert entry.id == first.id
    assert entry.created_at == first.created_at
    assert entry.updated_at > first.updated_at


def test_store_many_same_key_twice_keeps_the_last(memory):
    memory.store_many([{"key": "k", "content": "first"}, {"key": "k", "content": "second"}])
    assert memory.get("k").content == "second"
    assert len(memory.list()) == 1


def test_store_many_empty_is_zero(memory):
    assert memory.store_many([]) == 0
    assert memory.list() == []


def test_store_many_accepts_a_generator(memory):
    assert memory.store_many({"key": f"g{i}", "content": "x"} for i in range(3)) == 3
    assert len(memory.list()) == 3


@pytest.mark.parametrize(
    "bad_item, words",
    [
        ({"key": "", "content": "x"}, ["item 2", "key", "empty"]),
        ({"key": "k" * 257, "content": "x"}, ["item 2", "key", "256"]),
        ({"content": "x"}, ["item 2", "key"]),
        ({"key": "k"}, ["item 2", "content"]),
        ({"key": "k", "content": "x", "colour": "red"}, ["item 2", "colour"]),
        ({"key": "k", "content": "x", "ttl": -1}, ["item 2", "ttl"]),
        ({"key": "k", "content": "x", "namespace": "bad\nns"}, ["item 2", "namespace", "control"]),
        ("not a dict", ["item 2", "dict"]),
    ],
)
def test_store_many_with_an_invalid_item_stores_nothing(memory, bad_item, words):
    memory.store("existing", "keep me")
    before = snapshot(memory)
    items = [{"key": "a", "content": "x"}, {"key": "existing", "content": "changed"}, bad_item]
    with pytest.raises(engram.InvalidInput) as info:
        memory.store_many(items)
    for word in words:
        assert word in str(info.value)
    assert snapshot(memory) == before
    assert memory.get("a") is None
    assert memory.get("existing").content == "keep me"


def _parted(monkeypatch) -> None:
    # Where a store writes one part of the items while the next is checked (SQLite), small parts:
    # a bad item then comes after parts already written in the transaction.
    from engram.memory import entries

    monkeypatch.setattr(entries, "FIRST_PART_ITEMS", 4)


def test_store_many_with_an_invalid_item_after_many_good_ones_stores_nothing(memory, monkeypatch):
    _parted(monkeypatch)
    memory.store("k3", "keep me")
    before = snapshot(memory)
    items = [{"key": f"k{i}", "content": f"words {i}", "namespace": "default"} for i in range(40)]
    items.append({"key": "late", "content": 7})
    with pytest.raises(engram.InvalidInput, match="item 40: content"):
        memory.store_many(iter(items))  # a generator too: nothing held back to check first
    assert snapshot(memory) == before
    assert memory.get("k3").content == "keep me"


def test_store_many_in_parts_is_one_batch(memory, monkeypatch):
    _parted(monkeypatch)
    memory.store("k1", "before", metadata={"kept": True})
    assert memory.search("repeated", mode="fts").count == 0  # a search cached before the batch
    items = [{"key": f"k{i % 30}", "content": f"repeated words {i}", "context": f"turn {i}"} for i in range(45)]
    assert memory.store_many(items) == 45
    assert len(memory.list(limit=100)) == 30
    assert memory.get("k1").content == "repeated words 31"  # the last item of a key wins
    assert memory.get("k1").metadata == {"kept": True}  # no metadata given: kept, as with store()
    assert memory.get("k1").context == "turn 31"
    assert memory.search("repeated", mode="fts", limit=50).count == 30


def test_store_many_content_too_large_stores_nothing(memory_factory):
    memory = memory_factory(max_content_bytes=100)
    with pytest.raises(engram.ContentTooLarge, match="item 1.*100"):
        memory.store_many([{"key": "a", "content": "x"}, {"key": "b", "content": "x" * 101}])
    assert memory.list() == []


# -- get / list --------------------------------------------------------------------


def test_get_missing_is_none(memory):
    assert memory.get("nope") is None


def test_list_is_newest_updated_first(memory):
    for key in ("a", "b", "c"):
        memory.store(key, key)
        tick()
    assert [e.key for e in memory.list()] == ["c", "b", "a"]
    memory.store("a", "updated")
    assert [e.key for e in memory.list()] == ["a", "c", "b"]


def test_list_limit_and_offset_page_through_everything(memory):
    for i in range(7):
        memory.store(f"k{i}", "x")
        tick()
    everything = [e.key for e in memory.list(limit=100)]
    assert everything == [f"k{i}" for i in reversed(range(7))]
    assert [e.key for e in memory.list(limit=2)] == everything[:2]
    assert [e.key for e in memory.list(limit=2, offset=2)] == everything[2:4]
    assert [e.key for e in memory.list(limit=5, offset=5)] == everything[5:]
    assert memory.list(limit=3, offset=7) == []
    pages = [e.key for off in range(0, 7, 3) for e in memory.list(limit=3, offset=off)]
    assert pages == everything


def test_list_default_limit_is_20(memory):
    memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(25)])
    assert len(memory.list()) == 20


def test_list_by_namespace_and_across_namespaces(memory):
    memory.store("a1", "x", namespace="a")
    memory.store("a2", "x", namespace="a")
    memory.store("b1", "x", namespace="b")
    assert sorted(e.key for e in memory.list(namespace="a")) == ["a1", "a2"]
    assert [e.key for e in memory.list(namespace="b")] == ["b1"]
    assert memory.list(namespace="c") == []
    assert sorted(e.key for e in memory.list()) == ["a1", "a2", "b1"]


def test_list_metadata_equality_filter(memory):
    memory.store("a", "x", metadata={"topic": "food", "n": 1})
    memory.store("b", "x", metadata={"topic": "food", "n": 2})
    memory.store("c", "x", metadata={"topic": "travel", "n": 1})
    memory.store("d", "x")

    assert sorted(e.key for e in memory.list(metadata={"topic": "food"})) == ["a", "b"]
    assert sorted(e.key for e in memory.list(metadata={"n": 1})) == ["a", "c"]
    assert [e.key for e in memory.list(metadata={"topic": "food", "n": 2})] == ["b"]
    assert memory.list(metadata={"topic": "music"}) == []
    assert memory.list(metadata={"missing": "x"}) == []
    assert len(memory.list(metadata={})) == 4


def test_metadata_filter_keeps_bools_numbers_and_strings_apart(memory):
    memory.store("true", "x", metadata={"v": True})
    memory.store("one", "x", metadata={"v": 1})
    memory.store("one-float", "x", metadata={"v": 1.0})
    memory.store("one-str", "x", metadata={"v": "1"})
    memory.store("false", "x", metadata={"v": False})
    memory.store("zero", "x", metadata={"v": 0})
    memory.store("null", "x", metadata={"v": None})
    memory.store("absent", "x", metadata={})

    def keys(value):
        return sorted(e.key for e in memory.list(metadata={"v": value}))

    assert keys(True) == ["true"]
    assert keys(False) == ["false"]
    assert keys(1) == ["one", "one-float"]  # JSON numbers compare by value
    assert keys(1.0) == ["one", "one-float"]
    assert keys("1") == ["one-str"]
    assert keys(0) == ["zero"]
    assert keys(None) == ["null"]  # null, not "absent"


def test_metadata_filter_on_nested_keys(memory):
    memory.store("a", "x", metadata={"user": {"name": "ada", "tier": {"level": 3}}})
    memory.store("b", "x", metadata={"user": {"name": "bob"}})
    memory.store("c", "x", metadata={"user": "ada"})
    memory.store("d", "x", metadata={"user.name": "ada"})  # a flat key with a dot is not nested

    assert [e.key for e in memory.list(metadata={"user.name": "ada"})] == ["a"]
    assert [e.key for e in memory.list(metadata={"user.tier.level": 3})] == ["a"]
    assert [e.key for e in memory.list(metadata={"user.name": "bob"})] == ["b"]
    assert [e.key for e in memory.list(metadata={"user": "ada"})] == ["c"]


def test_metadata_filter_with_hyphens_and_underscores(memory):
    memory.store("a", "x", metadata={"source-id": "s1", "_private": True})
    assert [e.key for e in memory.list(metadata={"source-id": "s1"})] == ["a"]
    assert [e.key for e in memory.list(metadata={"_private": True})] == ["a"]


def test_key_prefix(memory):
    for key in ("user:1", "user:2", "USER:3", "item:1", "user"):
        memory.store(key, "x")
    memory.store("user:9", "x", namespace="other")

    assert sorted(e.key for e in memory.list(key_prefix="user:")) == ["user:1", "user:2", "user:9"]
    assert sorted(e.key for e in memory.list(key_prefix="user:", namespace="default")) == ["user:1", "user:2"]
    assert [e.key for e in memory.list(key_prefix="USER")] == ["USER:3"]  # case-sensitive
    assert memory.list(key_prefix="nothing") == []


def test_key_prefix_has_no_wildcards(memory):
    for key in ("a%b", "axb", "a_c", "abc"):
        memory.store(key, "x")
    assert [e.key for e in memory.list(key_prefix="a%")] == ["a%b"]
    assert [e.key for e in memory.list(key_prefix="a_")] == ["a_c"]


def test_key_prefix_combined_with_metadata_and_paging(memory):
    for i in range(6):
        memory.store(f"p{i}", "x", metadata={"even": i % 2 == 0})
        tick()
    memory.store("q0", "x", metadata={"even": True})
    found = memory.list(key_prefix="p", metadata={"even": True}, limit=2)
    assert [e.key for e in found] == ["p4", "p2"]
    assert [e.key for e in memory.list(key_prefix="p", metadata={"even": True}, limit=2, offset=2)] == ["p0"]


# -- delete / namespaces -------------------------------------------------------


def test_delete(memory):
    memory.store("k", "v")
    memory.store("k", "v", namespace="other")
    assert memory.delete("k") is True
    assert memory.get("k") is None
    assert memory.get("k", namespace="other") is not None
    assert memory.delete("k") is False
    assert memory.delete("never") is False


def test_delete_then_store_again_is_a_new_entry(memory):
    first = memory.store("k", "v")
    memory.delete("k")
    second = memory.store("k", "v")
    assert second.id != first.id


def test_namespaces_are_sorted_and_distinct(memory):
    memory.store("a", "x", namespace="zeta")
    memory.store("b", "x", namespace="alpha")
    memory.store("c", "x", namespace="alpha")
    memory.store("d", "x")
    assert memory.namespaces() == ["alpha", "default", "zeta"]


def test_delete_namespace(memory):
    memory.store_many([{"key": f"k{i}", "content": "x"} for i in range(3)], namespace="doomed")
    memory.store("k0", "x", namespace="kept")

    assert memory.delete_namespace("doomed") == 3
    assert memory.namespaces() == ["kept"]
    assert memory.list(namespace="doomed") == []
    assert memory.get("k0", namespace="kept") is not None
    assert memory.delete_namespace("doomed") == 0
    assert memory.delete_namespace("never-existed") == 0


def test_empty_store(memory):
    assert memory.list() == []
    assert memory.namespaces() == []
    stats = memory.stats()
    assert (stats.entries, stats.namespaces, stats.sessions, stats.tasks, stats.expired_entries) == (0, 0, 0, 0, 0)


def test_stats_counts(memory):
    memory.store("a", "x", namespace="n1")
    memory.store("b", "x", namespace="n2")
    memory.store("c", "x", namespace="n2")
    session = memory.session_start()
    memory.task_create("agent", {"q": 1}, session_id=session.id)
    stats = memory.stats()
    assert isinstance(stats, engram.Stats)
    assert stats.url == memory.url
    assert (stats.entries, stats.namespaces, stats.sessions, stats.tasks, stats.expired_entries) == (3, 2, 1, 1, 0)


# -- TTL -------------------------------------------------------------------------


def test_ttl_sets_expires_at(memory):
    entry = memory.store("k", "v", ttl=60)
    assert entry.expires_at is not None
    assert math.isclose((entry.expires_at - entry.updated_at).total_seconds(), 60, abs_tol=0.001)


def test_expired_entries_are_invisible_to_every_read(memory):
    memory.store("gone", "ephemeral words", namespace="tmp", ttl=0.05)
    memory.store("stays", "durable words", namespace="keep")
    time.sleep(0.1)

    assert memory.get("gone", namespace="tmp") is None
    assert [e.key for e in memory.list()] == ["stays"]
    assert memory.list(namespace="tmp") == []
    assert memory.namespaces() == ["keep"]
    assert memory.stats().entries == 1
    assert memory.stats().expired_entries == 1
    assert memory.delete("gone", namespace="tmp") is False


@pytest.mark.requires("fts")
def test_expired_entries_are_invisible_to_search(memory):
    memory.store("gone", "ephemeral words", ttl=0.05)
    memory.store("stays", "durable words")
    time.sleep(0.1)
    result = memory.search("words")
    assert [h.entry.key for h in result.results] == ["stays"]
    assert memory.search("ephemeral").count == 0


def test_prune_removes_expired_entries(memory):
    memory.store("a", "x", ttl=0.05)
    memory.store("b", "x", namespace="n", ttl=0.05)
    memory.store("c", "x")
    memory.store("d", "x", ttl=3600)
    time.sleep(0.1)

    report = memory.prune()
    assert isinstance(report, engram.PruneReport)
    assert report.expired_entries == 2
    assert memory.stats().expired_entries == 0
    assert memory.stats().entries == 2
    assert memory.prune().expired_entries == 0


def test_storing_over_an_expired_entry_starts_afresh(memory):
    old = memory.store("k", "old", ttl=0.05)
    time.sleep(0.1)
    new = memory.store("k", "new")
    assert new.id != old.id
    assert new.created_at > old.created_at
    assert new.expires_at is None
    stored = memory.get("k")
    assert stored.id == new.id
    assert stored.created_at == new.created_at


def test_delete_namespace_counts_only_live_entries(memory):
    memory.store("a", "x", namespace="n", ttl=0.05)
    memory.store("b", "x", namespace="n")
    time.sleep(0.1)
    assert memory.delete_namespace("n") == 1
    assert memory.stats().expired_entries == 0  # the expired one went too


def test_upsert_can_add_a_ttl(memory):
    memory.store("k", "v")
    memory.store("k", "v", ttl=0.05)
    time.sleep(0.1)
    assert memory.get("k") is None


# -- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"key": ""}, engram.InvalidInput, ["key", "empty"]),
        ({"key": "k" * 257}, engram.InvalidInput, ["key", "257", "256"]),
        ({"key": "a\x00b"}, engram.InvalidInput, ["key", "control"]),
        ({"key": "line\nbreak"}, engram.InvalidInput, ["key", "control"]),
        ({"key": "del\x7f"}, engram.InvalidInput, ["key", "control"]),
        ({"key": "lone\ud800"}, engram.InvalidInput, ["key"]),
        ({"key": 42}, engram.InvalidInput, ["key", "string", "int"]),
        ({"key": None}, engram.InvalidInput, ["key", "string"]),
        ({"namespace": ""}, engram.InvalidInput, ["namespace", "empty"]),
        ({"namespace": "n" * 257}, engram.InvalidInput, ["namespace", "256"]),
        ({"namespace": "tab\there"}, engram.InvalidInput, ["namespace", "control"]),
        ({"namespace": 7}, engram.InvalidInput, ["namespace", "string"]),
        ({"content": "x" * 101}, engram.ContentTooLarge, ["content", "101", "100"]),
        ({"content": "é" * 51}, engram.ContentTooLarge, ["content", "102 bytes", "100"]),
        ({"content": b"bytes"}, engram.InvalidInput, ["content", "string", "bytes"]),
        ({"content": None}, engram.InvalidInput, ["content", "string"]),
        ({"content": "lone \udc80 surrogate"}, engram.InvalidInput, ["content", "surrogate"]),
        ({"metadata": ["not", "a", "dict"]}, engram.InvalidInput, ["metadata", "dict"]),
        ({"metadata": {"x": object()}}, engram.InvalidInput, ["metadata", "JSON"]),
        ({"metadata": {"x": float("nan")}}, engram.InvalidInput, ["metadata"]),
        ({"metadata": {1: "int key"}}, engram.InvalidInput, ["metadata", "keys"]),
        ({"metadata": {"big": "x" * 200}}, engram.ContentTooLarge, ["metadata", "100"]),
        ({"ttl": 0}, engram.InvalidInput, ["ttl", "between"]),
        ({"ttl": -5}, engram.InvalidInput, ["ttl"]),
        ({"ttl": "60"}, engram.InvalidInput, ["ttl", "number"]),
        ({"ttl": True}, engram.InvalidInput, ["ttl"]),
        ({"ttl": float("inf")}, engram.InvalidInput, ["ttl"]),
        ({"ttl": 10**12}, engram.InvalidInput, ["ttl", "100 years"]),
    ],
)
def test_store_rejects_invalid_input_and_changes_nothing(memory_factory, kwargs, error, words):
    memory = memory_factory(max_content_bytes=100)
    memory.store("existing", "keep me", metadata={"a": 1})
    before = snapshot(memory)
    call = {"key": "existing", "content": "new content", "namespace": "default"} | kwargs

    with pytest.raises(error) as info:
        memory.store(call.pop("key"), call.pop("content"), **call)

    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, engram.EngramError)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"
    assert snapshot(memory) == before


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda m: m.get(""), ["key"]),
        (lambda m: m.get("k", namespace="x" * 300), ["namespace", "256"]),
        (lambda m: m.delete("\x00"), ["key", "control"]),
        (lambda m: m.delete_namespace(""), ["namespace"]),
        (lambda m: m.list(limit=0), ["limit", "1", "10000"]),
        (lambda m: m.list(limit=10_001), ["limit", "10000"]),
        (lambda m: m.list(limit="5"), ["limit"]),
        (lambda m: m.list(limit=True), ["limit"]),
        (lambda m: m.list(offset=-1), ["offset", "0"]),
        (lambda m: m.list(namespace=""), ["namespace"]),
        (lambda m: m.list(key_prefix=""), ["key_prefix"]),
        (lambda m: m.list(metadata=["x"]), ["metadata", "dict"]),
        (lambda m: m.list(metadata={"a b": 1}), ["metadata", "a b"]),
        (lambda m: m.list(metadata={"x') OR 1=1 --": 1}), ["metadata"]),
        (lambda m: m.list(metadata={'a"b': 1}), ["metadata"]),
        (lambda m: m.list(metadata={"a..b": 1}), ["metadata"]),
        (lambda m: m.list(metadata={"k": [1, 2]}), ["metadata", "list"]),
        (lambda m: m.list(metadata={"k": {"x": 1}}), ["metadata", "dict"]),
        (lambda m: m.list(metadata={"k": float("nan")}), ["metadata", "finite"]),
    ],
)
def test_reads_and_deletes_reject_invalid_input(memory, call, words):
    memory.store("k", "v", metadata={"k": 1})
    before = snapshot(memory)
    with pytest.raises(engram.InvalidInput) as info:
        call(memory)
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"
    assert snapshot(memory) == before


# -- lifecycle -----------------------------------------------------------------------


def test_context_manager_and_double_close(memory_factory):
    url = memory_factory.url()
    with engram.Memory(url) as memory:
        memory.store("k", "v")
        assert repr(memory) == f"Memory({url!r})"
    memory.close()  # a second close is harmless


@pytest.mark.requires("persistent")
def test_data_outlives_the_memory_object(memory_factory):
    url = memory_factory.url()
    with engram.Memory(url) as memory:
        stored = memory.store("k", "persisted", metadata={"x": [1]})
        session = memory.session_start({"s": 1})
    with engram.Memory(url) as memory:
        assert memory.get("k") == stored
        assert memory.session_get(session.id) == session


@pytest.mark.requires("vacuum")
def test_vacuum_keeps_data(memory):
    memory.store_many([{"key": f"k{i}", "content": f"word{i} shared"} for i in range(50)])
    for i in range(25):
        memory.delete(f"k{i}")
    memory.vacuum()
    assert memory.stats().entries == 25
    assert memory.get("k30").content == "word30 shared"
    if "fts" in memory.backend.capabilities:
        assert memory.search("shared", limit=100).count == 25


def test_vacuum_is_callable_on_every_backend(memory):
    memory.store("k", "v")
    memory.vacuum()
    assert memory.get("k").content == "v"
