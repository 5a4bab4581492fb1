"""``EngramChatMessageHistory`` against LangChain's documented ``BaseChatMessageHistory`` contract.

``langchain-tests`` publishes no standard suite for chat histories, so these
tests follow the interface's docstring: ``messages`` oldest first,
``add_messages`` in bulk (here: one write, all or nothing), ``clear``, the async
twins, and use under ``RunnableWithMessageHistory``; every message type keeps
what LangChain puts in it. They run on every engram backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langchain_core.chat_history")

from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from engram import Memory
from engram.errors import InvalidInput
from engram.integrations.langchain import EngramChatMessageHistory
from tests.conftest import BACKEND_FACTORIES


@pytest.fixture(params=["sqlite", "postgresql", "redis", "memory", "json"])
def memory(request: pytest.FixtureRequest, tmp_path: Path):
    with BACKEND_FACTORIES[request.param](tmp_path) as url, Memory(url) as m:
        yield m


CONVERSATION = [
    SystemMessage("You are terse."),
    HumanMessage("What is 2+2?", additional_kwargs={"lang": "en"}, name="ann", id="h1"),
    AIMessage(
        "",
        tool_calls=[
            {
                "name": "add",
                "args": {"a": 2, "b": 2},
                "id": "call_1",
                "type": "tool_call",
            }
        ],
        additional_kwargs={"refusal": None},
        response_metadata={"model_name": "m-1", "finish_reason": "tool_calls"},
        id="a1",
    ),
    ToolMessage("4", tool_call_id="call_1", name="add", artifact={"raw": 4}),
    AIMessage(
        [{"type": "text", "text": "It is 4."}],
        usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
    ),
]


def test_round_trip_keeps_every_field(memory: Memory) -> None:
    history = EngramChatMessageHistory("s-1", memory)
    assert history.messages == []
    history.add_messages(CONVERSATION)
    assert history.messages == CONVERSATION
    stored = memory.history("s-1")
    assert [m.role for m in stored] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert (
        stored[2].tool_calls[0]["function"]["name"] == "add"
    )  # engram's own view, OpenAI shape
    assert stored[3].tool_call_id == "call_1"
    assert stored[4].content == "It is 4."


def test_add_messages_is_one_write(memory: Memory) -> None:
    history = EngramChatMessageHistory("s-2", memory)
    history.add_user_message("first")
    bad = HumanMessage("second", additional_kwargs={"x": object()})
    with pytest.raises(InvalidInput):
        history.add_messages([HumanMessage("ok"), bad])
    assert [m.content for m in history.messages] == ["first"]


def test_clear_and_sessions_apart(memory: Memory) -> None:
    a = EngramChatMessageHistory("s-a", memory, user_id="u1")
    b = EngramChatMessageHistory("s-b", memory)
    a.add_user_message("hello a")
    a.add_ai_message("hi")
    b.add_user_message("hello b")
    assert memory.history("s-a")[0].user_id == "u1"
    a.clear()
    assert a.messages == []
    assert [m.content for m in b.messages] == ["hello b"]
    EngramChatMessageHistory("never-written", memory).clear()  # a no-op, not an error


def test_messages_written_by_engram_read_as_langchain(memory: Memory) -> None:
    memory.add_messages(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
            {"role": "tool", "content": "done", "tool_call_id": "c1"},
        ],
        session_id="native",
    )  # fmt: skip
    read = EngramChatMessageHistory("native", memory).messages
    assert [type(m) for m in read] == [HumanMessage, AIMessage, ToolMessage]
    assert read[1].tool_calls[0]["name"] == "f" and read[1].tool_calls[0]["args"] == {
        "x": 1
    }
    assert read[2].tool_call_id == "c1"


async def test_async_twins(memory: Memory) -> None:
    history = EngramChatMessageHistory("s-async", memory)
    await history.aadd_messages([HumanMessage("a"), AIMessage("b")])
    assert [m.content for m in await history.aget_messages()] == ["a", "b"]
    await history.aclear()
    assert await history.aget_messages() == []


def test_with_runnable_with_message_history(memory: Memory) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{question}")]
    )
    # The "model" answers with how many messages it was given: history must grow by two per turn.
    chain = prompt | RunnableLambda(
        lambda value: AIMessage(f"saw {len(value.to_messages())}")
    )
    with_history = RunnableWithMessageHistory(
        chain,
        lambda session_id: EngramChatMessageHistory(session_id, memory),
        input_messages_key="question",
        history_messages_key="history",
    )
    config = {"configurable": {"session_id": "chat-1"}}
    assert with_history.invoke({"question": "one"}, config).content == "saw 1"
    assert with_history.invoke({"question": "two"}, config).content == "saw 3"
    assert [m.content for m in EngramChatMessageHistory("chat-1", memory).messages] == [
        "one",
        "saw 1",
        "two",
        "saw 3",
    ]
