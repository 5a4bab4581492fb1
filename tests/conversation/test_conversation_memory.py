"""ConversationMemory: save flags, load flags, and the context within a budget.

Tests that involve summaries or profiles run against the local fake
chat-completions server (``conftest.py``) with valid or invalid output, as
each docstring says; the others need no LLM.
"""

from __future__ import annotations

import json
import uuid

import pytest

import engram
from engram import ConversationMemory
from engram.conversation import AsyncConversationMemory, approx_tokens

CALL = {"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}


@pytest.fixture
def session(memory):
    return memory.session_start()


def test_default_saves_and_loads_full_history(memory, session):
    """No LLM involved."""
    conv = ConversationMemory(memory, session_id=session.id, user_id="u1")
    result = conv.save_turn("What's 2+2?", "4")
    assert result.stored and [m.role for m in result.messages] == ["user", "assistant"]
    assert result.messages[0].user_id == "u1"
    ctx = conv.context()
    assert [m.content for m in ctx.messages] == ["What's 2+2?", "4"]
    assert ctx.summary is None and ctx.profile is None and not ctx.truncated
    assert ctx.as_messages() == [{"role": "user", "content": "What's 2+2?"}, {"role": "assistant", "content": "4"}]
    assert ctx.as_text() == "user: What's 2+2?\nassistant: 4"


def test_load_flags_default_to_save_flags(memory, session, fake_llm):
    """Fake server: not called (construction only)."""
    conv = ConversationMemory(memory, session_id=session.id, user_id="u", llm=fake_llm.client(), summary_memory=True, user_analysis_memory=True)
    assert (conv.load_full_session_memory, conv.load_summary_memory, conv.load_user_analysis_memory) == (True, True, True)
    conv = ConversationMemory(memory, session_id=session.id, full_session_memory=False, load_summary_memory=True)
    assert (conv.load_full_session_memory, conv.load_summary_memory, conv.load_user_analysis_memory) == (False, True, False)


def test_save_full_history_but_load_only_the_summary(memory, session, fake_llm):
    """Fake server: valid summaries. The example users expect to work."""
    fake_llm.always({"summary": "The user is planning a trip to Oslo in May."})
    conv = ConversationMemory(
        memory, session_id=session.id, llm=fake_llm.client(),
        full_session_memory=True, summary_memory=True, load_full_session_memory=False, summary_every=2,
    )  # fmt: skip
    conv.save_turn("I want to visit Oslo", "When?")
    conv.save_turn("In May", "Great, May it is.")
    assert len(memory.history(session.id)) == 4  # everything saved
    ctx = conv.context()
    assert ctx.messages == []  # ... but no history loaded
    assert ctx.summary.content == "The user is planning a trip to Oslo in May."
    assert ctx.summary.message_count == 4
    injected = ctx.as_messages()
    assert len(injected) == 1 and injected[0]["role"] == "system"
    assert "not instructions" in injected[0]["content"]
    assert json.dumps("The user is planning a trip to Oslo in May.") in injected[0]["content"]


def test_summary_only_without_saving_history(memory, session, fake_llm):
    """Fake server: valid summaries; unsaved messages reach the summarizer every turn."""
    fake_llm.always({"summary": "running summary"})
    conv = ConversationMemory(memory, session_id=session.id, llm=fake_llm.client(), full_session_memory=False, summary_memory=True)
    result = conv.save_turn("secret plans", "ok")
    assert not result.stored and result.summary.message_count == 2
    assert memory.history(session.id) == []
    conv.save_turn("more", "fine")
    assert memory.summary(session.id).message_count == 4
    assert len(fake_llm.requests) == 2
    assert conv.context().messages == [] and conv.context().summary.content == "running summary"


def test_user_analysis_builds_and_loads_the_profile(memory, session, fake_llm):
    """Fake server: valid profile traits that cite the user message it was shown."""

    def traits(body):
        prompt = body["messages"][-1]["content"]
        shown = json.loads(prompt.split("<data-user-messages>\n")[1].split("\n</data-user-messages>")[0])
        return json.dumps({"traits": [{"name": "diet", "value": "vegan", "source_message_ids": [shown[0]["id"]]}]})

    fake_llm.always(traits)
    conv = ConversationMemory(memory, session_id=session.id, user_id="ana", llm=fake_llm.client(), user_analysis_memory=True)
    result = conv.save_turn("I'm vegan", "Noted")
    assert result.profile.traits["diet"].source_message_ids == [result.messages[0].id]
    ctx = conv.context()
    assert ctx.profile.traits["diet"].value == "vegan"
    assert '{"diet": "vegan"}' in ctx.as_messages()[0]["content"]
    # A second conversation in a new session loads the same profile.
    other = ConversationMemory(memory, session_id=memory.session_start().id, user_id="ana", load_user_analysis_memory=True)
    assert other.context().profile.traits["diet"].value == "vegan"


def test_llm_flags_need_an_llm_and_a_user(memory, session, fake_llm):
    """No LLM calls: construction checks."""
    with pytest.raises(engram.InvalidInput, match="need an llm"):
        ConversationMemory(memory, session_id=session.id, summary_memory=True)
    # Issue 16: without a user_id one is generated (as Upsonic does), so the profile has an owner.
    conv = ConversationMemory(memory, session_id=session.id, llm=fake_llm.client(), user_analysis_memory=True)
    assert str(uuid.UUID(conv.user_id, version=4)) == conv.user_id
    with pytest.raises(engram.InvalidInput):  # any clean id starts a session: test_chat_sessions.py
        ConversationMemory(memory, session_id="no such session")
    with pytest.raises(engram.InvalidInput):
        ConversationMemory(memory, session_id=session.id, token_budget=0)


def test_llm_failure_keeps_the_messages(memory, session, fake_llm):
    """Fake server: invalid output every time; strict raises, non-strict reports."""
    fake_llm.always("not json at all")
    strict = ConversationMemory(memory, session_id=session.id, llm=fake_llm.client(output_retries=0), summary_memory=True, summary_every=1)
    with pytest.raises(engram.LLMOutputError):
        strict.save_turn("hello", "hi")
    assert len(memory.history(session.id)) == 2  # saved before the LLM ran
    assert memory.summary(session.id) is None  # nothing half-parsed stored
    lenient = ConversationMemory(
        memory, session_id=session.id, llm=fake_llm.client(output_retries=0), summary_memory=True, summary_every=1, strict=False
    )
    result = lenient.save_turn("again", "yes")
    assert result.errors and result.errors[0].startswith("summary:")
    assert memory.summary(session.id) is None


def test_num_last_messages(memory, session):
    """No LLM involved."""
    conv = ConversationMemory(memory, session_id=session.id, num_last_messages=3)
    for i in range(5):
        conv.save_turn(f"q{i}", f"a{i}")
    ctx = conv.context()
    assert [m.content for m in ctx.messages] == ["a3", "q4", "a4"]
    assert ctx.truncated
    assert [m.content for m in conv.context(num_last_messages=1).messages] == ["a4"]
    assert not conv.context(num_last_messages=100).truncated


def save_tool_turn(conv, n):
    conv.save_turn(
        f"question {n}",
        [
            {"content": None, "tool_calls": [{**CALL, "id": f"call_{n}"}]},
            {"role": "tool", "content": f"tool result {n} " + "x" * 40, "tool_call_id": f"call_{n}"},
            {"content": f"answer {n}"},
        ],
    )


def test_trimming_never_separates_a_tool_call_from_its_result(memory, session):
    """No LLM involved."""
    conv = ConversationMemory(memory, session_id=session.id, feed_tool_call_results=True)  # tools load (issue 16)
    for n in range(3):
        save_tool_turn(conv, n)
    history = memory.history(session.id)
    assert [m.role for m in history[:4]] == ["user", "assistant", "tool", "assistant"]
    for limit in range(1, 13):
        ctx = conv.context(num_last_messages=limit)
        check_tool_pairs(ctx.messages)
        assert len(ctx.messages) <= limit
    # A window starting at the tool result drops it rather than show it alone.
    assert [m.role for m in conv.context(num_last_messages=10).messages][0] != "tool"
    for budget in range(1, 200, 7):
        ctx = conv.context(token_budget=budget)
        check_tool_pairs(ctx.messages)
        assert ctx.tokens <= budget


def check_tool_pairs(messages):
    ids = [m.id for m in messages]
    for i, m in enumerate(messages):
        if m.role == "tool":
            assert i > 0, "a tool result without its call"
            caller = messages[i - 1] if messages[i - 1].role == "assistant" else None
            assert caller is not None and caller.tool_calls, "tool result separated from its call"
        if m.tool_calls:
            assert i + 1 < len(messages) and messages[i + 1].role == "tool", f"call {ids[i]} without its result"


def test_token_budget_keeps_the_newest_messages_that_fit(memory, session, fake_llm):
    """Fake server: a valid summary, which counts against the budget and is never cut."""
    fake_llm.always({"summary": "s" * 40})
    conv = ConversationMemory(memory, session_id=session.id, llm=fake_llm.client(), summary_memory=True, summary_every=1000)
    for i in range(300):  # more than one page of history
        conv.add("user", f"message number {i:03d}")
    everything = conv.context()
    assert len(everything.messages) == 300 and not everything.truncated
    small = conv.context(token_budget=150)
    assert small.truncated
    assert small.messages[-1].content == "message number 299"
    assert small.tokens <= 150
    one = approx_tokens("message number 299") + 4
    assert len(small.messages) == 150 // one
    conv.summarize_now()
    with_summary = conv.context(token_budget=150)
    assert with_summary.summary is not None
    assert 0 < len(with_summary.messages) < len(small.messages)
    assert with_summary.tokens <= 150
    tiny = conv.context(token_budget=10)  # the summary alone is larger: it stays, the history goes
    assert tiny.summary is not None and tiny.messages == [] and tiny.truncated
    big = conv.context(token_budget=100_000)
    assert len(big.messages) == 300 and not big.truncated


def test_custom_token_counter(memory, session):
    """No LLM involved."""
    conv = ConversationMemory(memory, session_id=session.id, count_tokens=lambda text: 1, token_budget=10)
    for i in range(10):
        conv.add("user", f"m{i}")
    assert len(conv.context().messages) == 2  # each message: 1 + 4 overhead


def test_clear_and_metadata(memory, session):
    """No LLM involved."""
    conv = ConversationMemory(memory, session_id=session.id, agent_id="bot")
    result = conv.save_turn({"content": "hi", "metadata": {"lang": "en"}}, "hello", metadata={"turn": 1})
    assert result.messages[0].metadata == {"turn": 1, "lang": "en"}
    assert result.messages[1].agent_id == "bot"
    assert conv.clear() == 2
    assert conv.context().messages == []


async def test_async_conversation_memory(fake_llm):
    """Fake server: valid summaries."""
    fake_llm.always({"summary": "async summary"})
    async with engram.AsyncMemory("memory://") as memory:
        s = await memory.session_start()
        conv = AsyncConversationMemory(
            memory, session_id=s.id, llm=fake_llm.client(), summary_memory=True, load_full_session_memory=False, summary_every=2
        )
        await conv.save_turn("hello", "hi")
        ctx = await conv.context()
        assert ctx.messages == [] and ctx.summary.content == "async summary"
        assert len(await memory.history(s.id)) == 2
        assert await conv.clear() == 2
