"""``EngramCache``: LangChain's ``BaseCache`` for LLM calls, on engram's cache layer (``memory.cache``).

A cached call is one cache value under ``langchain-llm:<hash of llm string>:<hash of prompt>``:
the generations as plain JSON (text, generation info, and a chat generation's
message as ``message_to_dict`` writes it), rebuilt on lookup by constructing
``Generation`` / ``ChatGeneration`` directly, never by loading arbitrary
serialized objects. Where the values live (this process's memory, or Redis
shared by every process) is the ``storage.cache`` setting of the ``Memory``.
"""

from __future__ import annotations

import asyncio
from hashlib import sha256
from typing import Any

from engram.integrations._extras import require
from engram.memory import Memory

require("langchain", "langchain_core.caches")

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

PREFIX = "langchain-llm:"


def _digest(text: str) -> str:
    return sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def cache_key(prompt: str, llm_string: str) -> str:
    """The cache key of a call: the model's settings and the prompt, hashed (keys stay short)."""
    return f"{PREFIX}{_digest(llm_string)}:{_digest(prompt)}"


def _to_json(generation: Generation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "text": generation.text,
        "generation_info": generation.generation_info,
    }
    if isinstance(generation, ChatGeneration):
        out["message"] = message_to_dict(generation.message)
    return out


def _from_json(data: dict[str, Any]) -> Generation:
    if "message" in data:
        message = messages_from_dict([data["message"]])[0]
        return ChatGeneration(
            message=message, generation_info=data.get("generation_info")
        )
    return Generation(text=data["text"], generation_info=data.get("generation_info"))


class EngramCache(BaseCache):
    """An LLM cache over ``memory.cache``: ``set_llm_cache(EngramCache(memory))``.

    Args:
        ttl: seconds a cached answer lives (None: the cache layer's default, or until evicted).
    """

    def __init__(self, memory: Memory, *, ttl: float | None = None) -> None:
        self.memory = memory
        self.ttl = ttl

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The generations cached for this prompt and model, or None."""
        found = self.memory.cache.get(cache_key(prompt, llm_string))
        if not isinstance(found, list):
            return None
        return [_from_json(g) for g in found]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Cache the generations of a call (replacing what was cached for it)."""
        self.memory.cache.set(
            cache_key(prompt, llm_string),
            [_to_json(g) for g in return_val],
            ttl=self.ttl,
        )

    def clear(self, **kwargs: Any) -> None:
        """Forget every cached LLM call (and nothing else in the cache)."""
        self.memory.cache.clear(prefix=PREFIX)

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        return await asyncio.to_thread(self.lookup, prompt, llm_string)

    async def aupdate(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> None:
        await asyncio.to_thread(self.update, prompt, llm_string, return_val)

    async def aclear(self, **kwargs: Any) -> None:
        await asyncio.to_thread(self.clear, **kwargs)
