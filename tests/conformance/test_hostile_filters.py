"""Hostile metadata filters and values get a typed InvalidInput on every backend (issue 9, item 4).

Before, SQLite raised OverflowError for a 23-digit integer, UnicodeEncodeError
for a lone surrogate, "Expression tree is too large" (a 503) for ~500 keys,
and every backend a RecursionError for metadata nested thousands deep.
"""

from __future__ import annotations

import pytest

import engram
from engram.validation import MAX_FILTER_KEYS, MAX_JSON_DEPTH


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


HOSTILE_FILTERS = {
    "23-digit integer": ({"n": 10**22}, ["'n'", "64-bit"]),
    "negative 23-digit integer": ({"n": -(10**22)}, ["'n'", "64-bit"]),
    "just past 64 bits": ({"n": 2**63}, ["'n'", "64-bit"]),
    "lone surrogate in a value": ({"n": "tea\ud800"}, ["'n'", "surrogate"]),
    "lone surrogate in a key": ({"\udc00": "x"}, ["key"]),
    "NUL in a value": ({"n": "a\x00b"}, ["'n'", "NUL"]),
    "too many keys": ({f"k{i}": i for i in range(500)}, ["500 keys", str(MAX_FILTER_KEYS)]),
    "nested value": ({"n": nested(5000)}, ["'n'", "dict"]),
}


@pytest.fixture
def stored(memory: engram.Memory) -> engram.Memory:
    memory.store("tea", "green tea", metadata={"n": 1, "topic": "tea"})
    return memory


@pytest.mark.parametrize("case", sorted(HOSTILE_FILTERS))
def test_hostile_filter_is_invalid_input_in_list(stored: engram.Memory, case: str) -> None:
    flt, words = HOSTILE_FILTERS[case]
    with pytest.raises(engram.InvalidInput) as info:
        stored.list(metadata=flt)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


@pytest.mark.requires("fts")
@pytest.mark.parametrize("case", sorted(HOSTILE_FILTERS))
def test_hostile_filter_is_invalid_input_in_search(stored: engram.Memory, case: str) -> None:
    flt, _ = HOSTILE_FILTERS[case]
    with pytest.raises(engram.InvalidInput):
        stored.search("tea", metadata=flt)
    assert [e.key for e in stored.list()] == ["tea"]  # the store is unchanged


def test_filters_at_the_limits_still_work(stored: engram.Memory) -> None:
    stored.store("big", "big numbers", metadata={"lo": -(2**63), "hi": 2**63 - 1})
    assert [e.key for e in stored.list(metadata={"hi": 2**63 - 1})] == ["big"]
    assert [e.key for e in stored.list(metadata={"lo": -(2**63)})] == ["big"]
    many = {f"k{i}": i for i in range(MAX_FILTER_KEYS)}
    stored.store("many", "many keys", metadata=many)
    assert [e.key for e in stored.list(metadata=many)] == ["many"]


def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    "metadata", [nested(5000), {"list": nested_list(5000)}, nested(MAX_JSON_DEPTH + 1)], ids=["dict", "list", "limit+1"]
)
def test_deeply_nested_metadata_is_invalid_input(memory: engram.Memory, metadata: dict) -> None:
    with pytest.raises(engram.InvalidInput) as info:
        memory.store("deep", "content", metadata=metadata)
    assert "metadata" in str(info.value) and str(MAX_JSON_DEPTH) in str(info.value)
    assert memory.get("deep") is None


def test_nesting_at_the_limit_is_stored(memory: engram.Memory) -> None:
    entry = memory.store("deep", "content", metadata=nested(MAX_JSON_DEPTH))
    assert memory.get("deep").metadata == entry.metadata


@pytest.mark.parametrize(
    "value, words",
    [({"x": "\ud800"}, ["surrogate"]), ({"\udc00": 1}, ["surrogate"]), ({"x": [[["\ud800"]]]}, ["surrogate"])],
)
def test_unencodable_metadata_on_store_is_invalid_input(memory: engram.Memory, value: dict, words: list[str]) -> None:
    with pytest.raises(engram.InvalidInput) as info:
        memory.store("k", "content", metadata=value)
    assert all(w in str(info.value) for w in words)
    assert memory.get("k") is None


def test_a_23_digit_integer_in_stored_metadata_round_trips(memory: engram.Memory) -> None:
    memory.store("k", "content", metadata={"n": 10**22})
    assert memory.get("k").metadata == {"n": 10**22}


@pytest.mark.requires("fts")
def test_hostile_user_strings_get_typed_errors(stored: engram.Memory) -> None:
    for call in (
        lambda: stored.list(namespace="ns\ud800"),
        lambda: stored.list(key_prefix="\udc00"),
        lambda: stored.get("k\ud800"),
        lambda: stored.store("k\ud800", "content"),
        lambda: stored.store("k", "content\ud800"),
        lambda: stored.search("tea", namespace="\ud800"),
    ):
        with pytest.raises(engram.InvalidInput):
            call()
    # A query may hold a lone surrogate: it separates words like any symbol.
    assert [h.entry.key for h in stored.search("tea\ud800").results] == ["tea"]
