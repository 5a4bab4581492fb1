"""``EngramChatMessageHistory``: LangChain's ``BaseChatMessageHistory`` over engram messages.

A LangChain message becomes an engram message of the matching role (human ->
``user``, ai -> ``assistant``, system, tool) with its text as content, an AI
message's tool calls in the OpenAI shape engram keeps, and a tool message's
``tool_call_id``; the rest of the message (id, name, additional kwargs,
response metadata, tool calls as LangChain writes them, content blocks) rides
in the message's metadata under ``lc``, so reading gives back an equal message.
Messages written by engram's other front ends (no ``lc``) are read from the
engram fields.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from engram.errors import NotFound
from engram.integrations._extras import require
from engram.memory import Memory
from engram.models import Message

require("langchain", "langchain_core.chat_history")

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

_ROLES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
}
_LC = (
    "lc"  # metadata field with the LangChain message, less what the engram fields hold
)


def _text(content: Any) -> str:
    """The text of a message's content: itself, or its text blocks joined."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def _openai_calls(message: BaseMessage) -> list[dict[str, Any]] | None:
    calls = getattr(message, "tool_calls", None)
    if not calls:
        return None
    return [
        {"id": c.get("id") or "", "type": "function",
         "function": {"name": c["name"], "arguments": json.dumps(c.get("args", {}), ensure_ascii=False)}}
        for c in calls
    ]  # fmt: skip


def to_engram(message: BaseMessage) -> dict[str, Any]:
    """The ``add_messages`` item of a LangChain message."""
    role = _ROLES.get(message.type, "user")
    data = message_to_dict(message)
    text = _text(message.content)
    if isinstance(message.content, str):
        data["data"].pop("content", None)  # the engram content holds it
    item: dict[str, Any] = {"role": role, "content": text, "metadata": {_LC: data}}
    if role == "assistant":
        item["tool_calls"] = _openai_calls(message)
    tool_call_id = getattr(message, "tool_call_id", None)
    if role == "tool" and tool_call_id:
        item["tool_call_id"] = tool_call_id
    return item


def from_engram(message: Message) -> BaseMessage:
    """The LangChain message an engram message holds (or stands for, when engram wrote it)."""
    data = message.metadata.get(_LC)
    if isinstance(data, dict):
        data = {
            "type": data["type"],
            "data": {"content": message.content, **data["data"]},
        }
        return messages_from_dict([data])[0]
    if message.role == "assistant":
        calls = [
            {"id": c.get("id"), "name": c.get("function", {}).get("name", ""),
             "args": json.loads(c.get("function", {}).get("arguments") or "{}")}
            for c in message.tool_calls
        ]  # fmt: skip
        return AIMessage(content=message.content, tool_calls=calls, id=message.id)
    if message.role == "tool":
        return ToolMessage(
            content=message.content,
            tool_call_id=message.tool_call_id or "",
            id=message.id,
        )
    if message.role == "system":
        return SystemMessage(content=message.content, id=message.id)
    return HumanMessage(content=message.content, id=message.id)


class EngramChatMessageHistory(BaseChatMessageHistory):
    """The messages of one engram session as a LangChain chat history.

    ``EngramChatMessageHistory("session-1", memory)``; with
    ``RunnableWithMessageHistory``, pass
    ``lambda session_id: EngramChatMessageHistory(session_id, memory)``.
    A session id never seen before starts that session on the first write.

    Args:
        user_id / agent_id: recorded on every message written (engram's profiles and filters use them).
    """

    def __init__(
        self,
        session_id: str,
        memory: Memory,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.memory = memory
        self.user_id = user_id
        self.agent_id = agent_id

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the session, oldest first (none for a session never written)."""
        try:
            return [from_engram(m) for m in self.memory.history(self.session_id)]
        except NotFound:
            return []

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the messages in one write (all or nothing)."""
        items = []
        for message in messages:
            item = to_engram(message)
            if self.user_id is not None:
                item["user_id"] = self.user_id
            if self.agent_id is not None:
                item["agent_id"] = self.agent_id
            items.append(item)
        if items:
            self.memory.add_messages(items, session_id=self.session_id)

    def clear(self) -> None:
        """Delete every message of the session (the session itself stays)."""
        try:
            self.memory.delete_history(self.session_id)
        except NotFound:
            pass

    async def aget_messages(self) -> list[BaseMessage]:
        return await asyncio.to_thread(lambda: self.messages)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await asyncio.to_thread(self.add_messages, messages)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)
