"""``EngramCache`` through LangChain's standard cache suites (``langchain-tests``
``SyncCacheTestSuite`` and ``AsyncCacheTestSuite``) on both backends of engram's
cache layer (in-process, and Redis shared by processes), plus TTL, chat
generations, and clearing only the LLM cache.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_tests")
pytest.importorskip("engram.cache")  # the cache layer (memory.cache)

from engram.cache import InMemoryCacheBackend
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_tests.integration_tests import AsyncCacheTestSuite, SyncCacheTestSuite

from engram import Memory
from engram.integrations.langchain import EngramCache
from tests.conftest import REDIS, REDIS_TEST_URL, require_service


@pytest.fixture(params=["in-memory", "redis"])
def memory(request: pytest.FixtureRequest) -> Iterator[Memory]:
    """A ``Memory`` whose cache layer is an empty backend of each kind."""
    if request.param == "in-memory":
        with Memory(
            "memory://", cache_backend=InMemoryCacheBackend(max_entries=1000)
        ) as m:
            yield m
        return
    require_service(*REDIS)
    import redis
    from engram.cache.redis import RedisCacheBackend

    prefix = f"engram-lc-cache-{uuid.uuid4().hex[:12]}"
    backend = RedisCacheBackend(REDIS_TEST_URL, key_prefix=prefix, max_connections=8)
    try:
        with Memory("memory://", cache_backend=backend) as m:
            yield m
    finally:
        backend.close()
        with redis.Redis.from_url(REDIS_TEST_URL) as client:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)


class TestEngramCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, memory: Memory) -> EngramCache:
        return EngramCache(memory)


class TestEngramCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, memory: Memory) -> EngramCache:
        return EngramCache(memory)


def test_chat_generations_round_trip(memory: Memory) -> None:
    cache = EngramCache(memory)
    message = AIMessage(
        "4", tool_calls=[{"name": "add", "args": {"a": 2}, "id": "c1", "type": "tool_call"}],
        response_metadata={"model_name": "m"}, id="run-1",
    )  # fmt: skip
    generations = [
        ChatGeneration(message=message, generation_info={"finish_reason": "stop"})
    ]
    cache.update("2+2?", "model=m;temperature=0", generations)
    assert cache.lookup("2+2?", "model=m;temperature=0") == generations
    assert (
        cache.lookup("2+2?", "model=m;temperature=1") is None
    )  # another model setting is another call


def test_ttl_and_clear_leave_other_values(memory: Memory) -> None:
    cache = EngramCache(memory, ttl=1.0)
    memory.cache.set("mine", {"kept": True})
    cache.update("p", "llm", [Generation(text="a")])
    assert cache.lookup("p", "llm") == [Generation(text="a")]
    time.sleep(1.3)
    assert cache.lookup("p", "llm") is None
    EngramCache(memory).update("q", "llm", [Generation(text="b")])
    EngramCache(memory).clear()
    assert EngramCache(memory).lookup("q", "llm") is None
    assert memory.cache.get("mine") == {
        "kept": True
    }  # clear() empties only the LLM cache


def test_works_as_langchains_llm_cache(memory: Memory) -> None:
    """A chat model answers once; the second identical call comes from engram."""
    from langchain_core.globals import set_llm_cache
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["first", "second"])
    set_llm_cache(EngramCache(memory))
    try:
        assert model.invoke("hello").content == "first"
        assert (
            model.invoke("hello").content == "first"
        )  # cached: the model's next answer is not used
        assert model.invoke("other").content == "second"
    finally:
        set_llm_cache(None)
