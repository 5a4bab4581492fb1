"""Redis backend specifics: the documented key layout, expiry, atomic upserts, the search cache.

Shared behaviour is in tests/conformance; these need a real server
(``redis_url`` skips without one, or fails on CI).
"""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

import engram
from engram.stores.redis import RedisStore, parse_redis_url
from engram.stores.redis.layout import Keys


def _prefix(url: str) -> str:
    return parse_qs(urlsplit(url).query)["prefix"][0]


@pytest.fixture
def raw(redis_url):
    with redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True) as client:
        yield client


def test_url_options():
    assert parse_redis_url("redis://:pw@h:6380/3?prefix=app&expiry_grace=0") == ("redis://:pw@h:6380/3", "app", 0.0)
    assert parse_redis_url("rediss://h/0")[1:] == ("engram", 3600.0)
    for bad in ("redis://h/0?prefix=a%20b", "redis://h/0?prefix=", "redis://h/0?expiry_grace=-1", "redis://h/0?expiry_grace=x"):
        with pytest.raises(engram.ConfigError):
            parse_redis_url(bad)


def test_unreachable_server_says_how_to_start_it():
    with pytest.raises(engram.BackendError) as info:
        engram.Memory(settings=engram.load_settings(database_url="redis://127.0.0.1:1/0", db_connect_timeout=2))
    assert "127.0.0.1:1" in str(info.value) and "start Redis" in str(info.value)


def test_capabilities_are_declared_honestly():
    # no vacuum; vectors are searched client-side (docs/backends.md)
    assert RedisStore.capabilities == {"conversation", "fts", "message_vector", "multiprocess", "persistent", "vector"}


def test_key_layout_is_as_documented(redis_url, raw):
    keys = Keys(_prefix(redis_url))
    with engram.Memory(redis_url) as memory:
        entry = memory.store("k:1", "hello", namespace="user:42", metadata={"a": 1}, ttl=60)
        session = memory.session_start({"s": 1})
        task = memory.task_create("agent", {"in": 1}, session_id=session.id)

    p = keys.prefix
    entry_key = f"{p}:entry:7:user:42:k:1"
    assert raw.type(entry_key) == "hash"
    h = raw.hgetall(entry_key)
    assert h["id"] == entry.id and h["namespace"] == "user:42" and h["key"] == "k:1" and h["content"] == "hello"
    assert h["metadata"] == '{"a":1}' and h["expires_at"] == engram._time.to_iso(entry.expires_at)
    member = h["order"]
    assert member.endswith("|7:user:42:k:1")
    assert raw.zscore(f"{p}:ns:user:42:order", member) == 0
    assert raw.zscore(f"{p}:order", member) == 0
    assert raw.zscore(f"{p}:ns:user:42:expiry", member) is not None
    assert raw.smembers(f"{p}:namespaces") == {"user:42"}
    assert raw.get(f"{p}:seq") == "1"
    assert int(raw.get(f"{p}:ns:user:42:version")) >= 1
    assert raw.hget(f"{p}:session:{session.id}", "status") == "active"
    assert raw.zcard(f"{p}:sessions") == 1 and raw.zcard(f"{p}:sessions:status:active") == 1
    assert raw.hget(f"{p}:task:{task.id}", "session_id") == session.id
    for index in (f"{p}:tasks", f"{p}:tasks:status:pending", f"{p}:tasks:session:{session.id}"):
        assert raw.zcard(index) == 1, index
    # The TTL is a Redis expiry: at expires_at plus the grace period.
    assert 3600 + 55 < raw.pttl(entry_key) / 1000 <= 3600 + 60


def test_upsert_without_ttl_removes_the_expiry(redis_url, raw):
    with engram.Memory(redis_url) as memory:
        memory.store("k", "v", ttl=60)
        memory.store("k", "v2")
    p = _prefix(redis_url)
    assert raw.pttl(f"{p}:entry:7:default:k") == -1
    assert raw.zcard(f"{p}:ns:default:expiry") == 0


def test_redis_drops_expired_entries_and_prune_clears_the_indexes(redis_url, raw):
    with engram.Memory(redis_url + "&expiry_grace=0") as memory:
        memory.store("gone", "x", ttl=0.05)
        memory.store("kept", "y")
        time.sleep(0.15)
        p = _prefix(redis_url)
        assert raw.exists(f"{p}:entry:7:default:gone") == 0  # Redis expired the hash itself
        stats = memory.stats()
        assert (stats.entries, stats.expired_entries) == (1, 1)  # still counted until pruned
        assert [e.key for e in memory.list()] == ["kept"]
        assert memory.prune().expired_entries == 1
        assert memory.stats().expired_entries == 0
        assert raw.zcard(f"{p}:order") == 1


def test_storing_over_a_dropped_entry(redis_url):
    with engram.Memory(redis_url + "&expiry_grace=0") as memory:
        old = memory.store("k", "old", ttl=0.05)
        time.sleep(0.15)
        new = memory.store("k", "new")
        assert new.id != old.id
        assert memory.get("k").id == new.id
        assert memory.prune().expired_entries == 1  # the old version's index entries
        stats = memory.stats()
        assert (stats.entries, stats.expired_entries) == (1, 0)
        assert memory.get("k").content == "new"  # prune left the new entry alone


def test_concurrent_upserts_keep_one_id(redis_url):
    stores = [engram.Memory(redis_url) for _ in range(6)]
    ids: list[set[str]] = [set() for _ in range(5)]
    lock = threading.Lock()

    def hammer(memory: engram.Memory) -> None:
        for i in range(40):
            e = memory.store(f"k{i % 5}", f"v{i}")
            with lock:
                ids[i % 5].add(e.id)

    threads = [threading.Thread(target=hammer, args=(m,)) for m in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert all(len(s) == 1 for s in ids), ids
        assert stores[0].stats().entries == 5
        assert {stores[0].get(f"k{j}").id for j in range(5)} == {next(iter(s)) for s in ids}
    finally:
        for m in stores:
            m.close()


def test_prefixes_isolate_stores(redis_url):
    other = redis_url.replace("prefix=", "prefix=other-")
    with engram.Memory(redis_url) as a, engram.Memory(other) as b:
        a.store("k", "in a")
        assert b.get("k") is None and b.stats().entries == 0
        b.store("k", "in b")
        assert a.get("k").content == "in a"
    with redis.Redis.from_url(redis_url.split("?")[0]) as client:
        client.delete(*client.keys(f"{_prefix(other)}:*"))


def test_search_sees_writes_of_other_processes(redis_url):
    with engram.Memory(redis_url) as reader, engram.Memory(redis_url) as writer:
        writer.store("a", "first words")
        assert [h.entry.key for h in reader.search("words").results] == ["a"]
        writer.store("b", "more words")
        writer.store("a", "changed text")
        assert [h.entry.key for h in reader.search("words").results] == ["b"]
        assert [h.entry.key for h in reader.search("changed").results] == ["a"]
        writer.delete("b")
        assert reader.search("words").count == 0
        writer.store("c", "words again", namespace="other")
        assert [h.entry.key for h in reader.search("words").results] == ["c"]
        writer.delete_namespace("other")
        assert reader.search("words").count == 0


def test_task_for_a_missing_session_is_a_conflict(redis_url):
    with engram.Memory(redis_url) as memory:
        task = memory.task_create("agent", None)
        with pytest.raises(engram.Conflict, match="does not exist"):
            memory.backend.put_task(task.model_copy(update={"session_id": "nope"}))


def test_closed_store_raises_backend_error(redis_url):
    memory = engram.Memory(redis_url)
    memory.close()
    memory.close()
    with pytest.raises(engram.BackendError, match="closed"):
        memory.get("k")
