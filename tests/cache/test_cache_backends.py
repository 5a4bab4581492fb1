"""What is particular to each cache backend: LRU eviction in process; Redis's pool, sharing and errors."""

from __future__ import annotations

import pytest

from engram.cache import Cache, InMemoryCacheBackend
from engram.errors import BackendError, ConfigError
from tests.conftest import REDIS, REDIS_TEST_URL, require_service


def test_in_memory_drops_the_least_recently_used_first() -> None:
    cache = Cache(InMemoryCacheBackend(max_entries=3), "p:")
    cache.set_many({"a": 1, "b": 2, "c": 3})
    cache.get("a")  # now b is the least recently used
    cache.set("d", 4)
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "c": 3, "d": 4}


def test_in_memory_is_not_shared_between_backends() -> None:
    one, two = InMemoryCacheBackend(), InMemoryCacheBackend()
    Cache(one, "p:").set("k", 1)
    assert Cache(two, "p:").get("k") is None and not one.shared


@pytest.fixture
def redis_backend_factory():
    require_service(*REDIS)
    from engram.cache.redis import RedisCacheBackend

    from .conftest import drop_redis_keys, redis_cache_prefix

    prefix, opened = redis_cache_prefix(), []

    def make(**kwargs):
        backend = RedisCacheBackend(
            kwargs.pop("url", REDIS_TEST_URL), key_prefix=prefix, **kwargs
        )
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()
    drop_redis_keys(prefix)


def test_redis_values_are_shared_by_every_client(redis_backend_factory) -> None:
    one, two = redis_backend_factory(), redis_backend_factory()
    Cache(one, "p:").set("k", {"v": 1}, ttl=30)
    assert Cache(two, "p:").get("k") == {"v": 1} and one.shared


def test_redis_max_connections_sizes_the_pool(redis_backend_factory) -> None:
    backend = redis_backend_factory(max_connections=7)
    assert backend._pool.max_connections == 7
    assert "max 7 connections" in backend.describe()


def test_redis_ttl_is_redis_own(redis_backend_factory) -> None:
    import redis

    backend = redis_backend_factory()
    Cache(backend, "p:").set("k", 1, ttl=100)
    with redis.Redis.from_url(REDIS_TEST_URL) as client:
        assert 99_000 <= client.pttl(backend.key_prefix + "p:k") <= 100_000


def test_redis_clear_removes_many_keys_in_batches(redis_backend_factory) -> None:
    cache = Cache(redis_backend_factory(), "p:")
    cache.set_many({f"k{i}": i for i in range(1234)})
    cache.set("other", 1)
    assert cache.clear("k") == 1234
    assert cache.stats().size == 1


def test_unreachable_redis_is_a_backend_error_saying_what_to_do() -> None:
    from engram.cache.redis import RedisCacheBackend

    with pytest.raises(BackendError, match=r"Redis at 127\.0\.0\.1:1/0.*start Redis"):
        RedisCacheBackend("redis://127.0.0.1:1/0", connect_timeout=0.5)


def test_a_redis_error_after_opening_is_translated(redis_backend_factory) -> None:
    import redis

    backend = redis_backend_factory()
    with redis.Redis.from_url(REDIS_TEST_URL) as client:
        client.set(backend.key_prefix + "list", "x")
        client.delete(backend.key_prefix + "list")
        client.rpush(backend.key_prefix + "list", "x")  # a value of the wrong type
    with pytest.raises(BackendError, match="reading the cache failed"):
        backend.get_many(["list"])


@pytest.mark.parametrize("prefix", ["", "has space", "x" * 65, "a:b"])
def test_bad_redis_key_prefixes_are_config_errors(prefix: str) -> None:
    require_service(*REDIS)
    from engram.cache.redis import RedisCacheBackend

    with pytest.raises(ConfigError, match="key prefix"):
        RedisCacheBackend(REDIS_TEST_URL, key_prefix=prefix)
