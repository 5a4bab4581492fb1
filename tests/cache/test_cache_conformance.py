"""The cache contract, the same test bodies over every cache backend (in-memory and real Redis)."""

from __future__ import annotations

import math
import threading
import time

import pytest

from engram.cache import Cache, CacheBackend
from engram.errors import ContentTooLarge, InvalidInput


def test_values_round_trip_as_json(cache: Cache) -> None:
    values = {
        "dict": {"a": 1, "b": [1, 2.5, None, True], "c": {"d": "é ✓"}},
        "list": [1, "two", 3.0],
        "str": "hello",
        "int": 2**53,
        "float": 0.1,
        "bool": False,
        "none": None,
    }
    for key, value in values.items():
        cache.set(key, value)
    for key, value in values.items():
        assert cache.get(key, "absent") == value
    assert cache.exists("none") and cache.get("none", "absent") is None


def test_a_value_comes_back_as_json_never_as_the_stored_object(cache: Cache) -> None:
    value = {"items": [1, 2], 3: "int key", "t": (1, 2)}
    cache.set("k", value)
    value["items"].append(3)
    assert cache.get("k") == {"items": [1, 2], "3": "int key", "t": [1, 2]}


@pytest.mark.parametrize(
    "value",
    [b"bytes", {1, 2}, object(), math.nan, float("inf"), {"k": {"nested": {3j}}}],
)
def test_values_json_cannot_hold_are_refused_and_nothing_is_stored(
    cache: Cache, value: object
) -> None:
    with pytest.raises(InvalidInput, match="JSON-serializable"):
        cache.set("k", value)
    assert not cache.exists("k")
    with pytest.raises(InvalidInput):
        cache.set_many({"good": 1, "bad": value})
    assert cache.get_many(["good", "bad"]) == {}


@pytest.mark.parametrize("key", ["", "x" * 1025, 5, None, b"k"])
def test_bad_keys_are_refused(cache: Cache, key: object) -> None:
    with pytest.raises(InvalidInput, match="cache keys"):
        cache.set(key, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="cache keys"):
        cache.get(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, -1, "5", True, math.nan, math.inf])
def test_bad_ttls_are_refused(cache: Cache, ttl: object) -> None:
    with pytest.raises(InvalidInput, match="ttl"):
        cache.set("k", 1, ttl=ttl)  # type: ignore[arg-type]
    assert not cache.exists("k")


def test_a_value_expires_after_its_ttl(cache: Cache) -> None:
    cache.set("short", 1, ttl=0.3)
    cache.set_many({"a": 1, "b": 2}, ttl=0.3)
    cache.set("long", 2)
    assert cache.get("short") == 1 and cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
    time.sleep(0.5)
    assert cache.get("short") is None and not cache.exists("short")
    assert cache.get_many(["a", "b", "long"]) == {"long": 2}
    assert cache.stats().size == 1


def test_set_replaces_and_clears_an_earlier_ttl(cache: Cache) -> None:
    cache.set("k", 1, ttl=0.3)
    cache.set("k", 2)
    time.sleep(0.5)
    assert cache.get("k") == 2


def test_delete_and_exists(cache: Cache) -> None:
    cache.set("k", "v")
    assert cache.exists("k")
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert not cache.exists("k") and cache.get("k", "gone") == "gone"


def test_get_many_returns_only_the_keys_that_hold_a_value(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": [2], "c": None})
    assert cache.get_many(["a", "b", "c", "missing", "a"]) == {
        "a": 1,
        "b": [2],
        "c": None,
    }
    assert cache.get_many([]) == {}
    with pytest.raises(InvalidInput, match="list of keys"):
        cache.get_many("ab")


def test_clear_by_prefix_takes_prefixes_literally(cache: Cache) -> None:
    cache.set_many(
        {
            "user:1": 1,
            "user:2": 2,
            "user*x": 3,
            "users": 4,
            "[a]b": 5,
            "ab": 6,
            "other": 7,
        }
    )
    assert cache.clear("user:") == 2
    assert cache.clear("user*") == 1  # the * is a character, not a wildcard
    assert cache.clear("[a]") == 1
    assert sorted(cache.get_many(["users", "ab", "other"])) == ["ab", "other", "users"]
    assert cache.clear() == 3
    assert cache.stats().size == 0


def test_projects_never_see_each_others_keys(cache_backend: CacheBackend) -> None:
    a, b = Cache(cache_backend, "project-a:u:"), Cache(cache_backend, "project-b:u:")
    a.set("shared-name", "a's")
    b.set("shared-name", "b's")
    assert a.get("shared-name") == "a's" and b.get("shared-name") == "b's"
    assert a.clear() == 1
    assert b.get("shared-name") == "b's" and b.stats().size == 1 and a.stats().size == 0


def test_stats_count_hits_misses_and_live_keys(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": 2})
    cache.get("a")
    cache.get("nope")
    cache.get_many(["a", "b", "c"])
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size) == (3, 2, 2)
    assert stats.hit_rate == pytest.approx(0.6)
    assert stats.backend


def test_default_ttl_applies_when_set_names_none(cache_backend: CacheBackend) -> None:
    cache = Cache(cache_backend, "p:u:", default_ttl=0.3)
    cache.set("k", 1)
    cache.set("kept", 1, ttl=60)
    time.sleep(0.5)
    assert not cache.exists("k") and cache.exists("kept")


def test_values_over_the_limit_are_refused(cache_backend: CacheBackend) -> None:
    cache = Cache(cache_backend, "p:u:", max_value_bytes=100)
    with pytest.raises(ContentTooLarge, match="limit is 100"):
        cache.set("k", "x" * 200)
    assert not cache.exists("k")


def test_many_threads_at_once(cache: Cache) -> None:
    def work(n: int) -> None:
        for i in range(50):
            cache.set(f"t{n}:{i}", {"n": n, "i": i})
            assert cache.get(f"t{n}:{i}") == {"n": n, "i": i}

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.stats().size == 400
