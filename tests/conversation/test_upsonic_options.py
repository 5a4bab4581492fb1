"""Conversation options at parity with the Upsonic seed (issue 16): generated ids,
tool results in context, profile schemas, dynamic profiles, every save/load flag.

LLM behaviour is tested against the local HTTP server speaking the
chat-completions protocol (``fake_llm`` in conftest.py), which answers as
each test scripts.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import ClassVar

import pytest
from pydantic import BaseModel, Field

import engram
from engram import ConversationMemory
from engram.conversation import AsyncConversationMemory
from engram.llm.profiles import MAX_DYNAMIC_FIELDS, MAX_DYNAMIC_VALUE_CHARS

CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}


def ids_shown(request: dict) -> list[str]:
    """The message ids a profile prompt quoted (the model may cite only these)."""
    prompt = [m for m in request["messages"] if m["role"] == "user"][0]["content"]  # [-1] may be a retry request
    block = re.search(r"<data-user-messages>\n(.*?)\n</data-user-messages>", prompt, re.DOTALL)
    return [m["id"] for m in json.loads(block.group(1))]


def traits_reply(traits: dict):
    """A reply (callable of the request) stating ``traits``, each citing the first message shown."""

    def reply(request: dict) -> str:
        first = ids_shown(request)[0]
        return json.dumps(
            {"traits": [{"name": n, "value": v, "source_message_ids": [first]} for n, v in traits.items()]}
        )

    return reply


# -- 3. ids ------------------------------------------------------------------------------


def test_ids_are_generated_and_the_session_starts_on_the_first_write(memory):
    """No LLM involved."""
    conv = ConversationMemory(memory, agent_id="helper")
    for value in (conv.session_id, conv.user_id):
        assert str(uuid.UUID(value, version=4)) == value
    other = ConversationMemory(memory)
    assert (other.session_id, other.user_id) != (conv.session_id, conv.user_id)
    assert memory.session_get(conv.session_id) is None  # nothing written yet
    assert conv.context().messages == [] and conv.clear() == 0
    conv.save_turn("hi", "hello")
    session = memory.session_get(conv.session_id)
    assert (session.status, session.user_id, session.agent_id) == ("active", conv.user_id, "helper")
    assert [m.user_id for m in memory.history(conv.session_id)] == [conv.user_id] * 2


async def test_async_ids_and_tool_results_are_the_same():
    """No LLM involved: the async twin generates and exposes ids, and loads tools as the sync one."""
    async with engram.AsyncMemory("memory://") as memory:
        conv = AsyncConversationMemory(memory, agent_id="helper")
        assert str(uuid.UUID(conv.session_id, version=4)) == conv.session_id
        assert await memory.session_get(conv.session_id) is None
        save = conv.sync
        save_tool_turn(save)
        session = await memory.session_get(conv.session_id)
        assert (session.user_id, session.agent_id) == (conv.user_id, "helper")
        assert [m.role for m in (await conv.context()).messages] == ["user", "assistant", "assistant"]


def test_a_session_exists_even_with_every_save_flag_off(memory):
    """No LLM involved: a paused run needs its session, whatever is saved (as the seed states)."""
    conv = ConversationMemory(memory, full_session_memory=False, user_id="ana")
    result = conv.save_turn("hi", "hello")
    assert not result.stored
    assert memory.session_get(conv.session_id).user_id == "ana"
    assert memory.history(conv.session_id) == []
    checkpoint = memory.checkpoint_save(conv.session_id, {"step": 1})
    assert memory.checkpoint_resume(checkpoint.id) == {"step": 1}


def test_a_bad_session_id_is_refused_before_anything_is_written(memory):
    """No LLM involved."""
    with pytest.raises(engram.InvalidInput, match="session id"):
        ConversationMemory(memory, session_id="has space")
    assert memory.sessions() == []


# -- 2. tool results -----------------------------------------------------------------------


def save_tool_turn(conv: ConversationMemory) -> None:
    conv.save_turn(
        "weather in Oslo?",
        [
            {"content": "Let me look.", "tool_calls": [CALL]},
            {"role": "tool", "content": '{"temp": -3}', "tool_call_id": "call_1"},
            {"content": "It is -3 C."},
        ],
    )


def test_tool_results_are_saved_but_loaded_only_with_feed_tool_call_results(memory):
    """No LLM involved."""
    off = ConversationMemory(memory, user_id="u")
    save_tool_turn(off)
    assert [m.role for m in memory.history(off.session_id)] == ["user", "assistant", "tool", "assistant"]
    loaded = off.context().messages
    # The call goes with its result; the assistant's own words stay.
    assert [(m.role, m.content, m.tool_calls) for m in loaded] == [
        ("user", "weather in Oslo?", []), ("assistant", "Let me look.", []), ("assistant", "It is -3 C.", []),
    ]  # fmt: skip
    assert all("tool_calls" not in m and m["role"] != "tool" for m in off.context().as_messages())

    on = ConversationMemory(memory, session_id=off.session_id, feed_tool_call_results=True)
    assert [m.role for m in on.context().messages] == ["user", "assistant", "tool", "assistant"]
    assert on.context().messages[1].tool_calls == [CALL]


def test_a_tool_call_without_its_result_is_never_loaded(memory):
    """No LLM involved: the result was never saved (the run stopped), or answers another call."""
    conv = ConversationMemory(memory, user_id="u", feed_tool_call_results=True)
    second = {**CALL, "id": "call_2"}
    conv.save_turn("two lookups", [{"content": None, "tool_calls": [CALL, second]},
                                   {"role": "tool", "content": "r1", "tool_call_id": "call_1"}])  # fmt: skip
    conv.save_turn("again", {"content": "", "tool_calls": [{**CALL, "id": "call_3"}]})
    loaded = conv.context().messages
    assert [m.role for m in loaded] == ["user", "assistant", "tool", "user"]
    assert loaded[1].tool_calls == [CALL]  # call_2 got no result: taken out
    for m in loaded:
        assert "call_3" not in json.dumps(m.tool_calls)


# -- save / load flags ---------------------------------------------------------------------

FLAGS = list(itertools.product([True, False], repeat=2))


def reply_for(request: dict) -> str:
    """Summaries to the summarizer, a trait to the profile extractor."""
    if '"traits"' in request["messages"][0]["content"]:
        return traits_reply({"drink": "tea"})(request)
    return json.dumps({"summary": "talked about tea"})


@pytest.mark.parametrize("history", FLAGS, ids=lambda f: f"history-save{f[0]:d}-load{f[1]:d}")
@pytest.mark.parametrize("summary", FLAGS, ids=lambda f: f"summary-save{f[0]:d}-load{f[1]:d}")
@pytest.mark.parametrize("profile", FLAGS, ids=lambda f: f"profile-save{f[0]:d}-load{f[1]:d}")
def test_every_save_and_load_flag_combination(memory, fake_llm, history, summary, profile):
    """Fake server: a valid summary or profile, whichever is asked for."""
    fake_llm.always(reply_for)
    conv = ConversationMemory(
        memory, user_id="ana", llm=fake_llm.client(), summary_every=1,
        full_session_memory=history[0], load_full_session_memory=history[1],
        summary_memory=summary[0], load_summary_memory=summary[1],
        user_analysis_memory=profile[0], load_user_analysis_memory=profile[1],
    )  # fmt: skip
    conv.save_turn("I drink tea", "Noted.")
    # Saved: exactly what the save flags say.
    assert len(memory.history(conv.session_id)) == (2 if history[0] else 0)
    assert (memory.summary(conv.session_id) is not None) == summary[0]
    assert (memory.profile("ana") is not None) == profile[0]
    # Loaded: what the load flags say, of what was saved.
    ctx = conv.context()
    assert len(ctx.messages) == (2 if history == (True, True) else 0)
    assert (ctx.summary is not None) == (summary == (True, True))
    assert (ctx.profile is not None) == (profile == (True, True))
    if profile == (True, True):
        assert ctx.profile.traits["drink"].value == "tea"


# -- 1. profile schemas --------------------------------------------------------------------


class Prefs(BaseModel):
    schema_version: ClassVar[str] = "2"  # the version stored with the profile

    favorite_drink: str | None = None
    age: int | None = Field(default=None, ge=0, le=150)


def test_a_pydantic_profile_schema_is_filled_validated_and_named(memory, fake_llm):
    """Fake server: a valid schema-shaped profile with one field outside the schema."""
    fake_llm.reply(traits_reply({"favorite_drink": "tea", "age": "41", "shoe_size": 44}))
    conv = ConversationMemory(
        memory, user_id="ana", llm=fake_llm.client(), user_analysis_memory=True, user_profile_schema=Prefs
    )
    profile = conv.save_turn("I'm 41 and love tea", "Noted").profile
    assert {n: t.value for n, t in profile.traits.items()} == {"favorite_drink": "tea", "age": 41}  # shoe_size dropped
    assert (profile.schema_name, profile.schema_version) == ("Prefs", "2")
    assert memory.profile("ana") == profile
    assert '"favorite_drink"' in fake_llm.requests[0]["messages"][0]["content"]  # the model was shown the schema


def test_invalid_schema_output_is_retried_then_llm_output_error(memory, fake_llm):
    """Fake server: values that do not fit the schema, every time, then (second test part) a fitting one."""
    fake_llm.reply(traits_reply({"age": -5})).reply(traits_reply({"age": "old"})).reply(traits_reply({"age": 500}))
    conv = ConversationMemory(
        memory, user_id="ana", llm=fake_llm.client(output_retries=2), user_analysis_memory=True,
        user_profile_schema=Prefs,
    )  # fmt: skip
    with pytest.raises(engram.LLMOutputError, match="age"):
        conv.save_turn("I'm ancient", "ok")
    assert memory.profile("ana") is None and len(fake_llm.requests) == 3
    assert "does not fit the profile schema" in fake_llm.requests[1]["messages"][-1]["content"]
    fake_llm.reply(traits_reply({"age": 15.0}))
    assert conv.save_turn("I'm 15", "ok").profile.traits["age"].value == 15


def test_a_json_schema_profile(memory, fake_llm):
    """Fake server: one reply that breaks the JSON Schema, then one that fits."""
    schema = {
        "title": "Diet", "version": "1", "type": "object",
        "properties": {"diet": {"enum": ["vegan", "vegetarian", "omnivore"]}, "allergies": {"type": "array", "items": {"type": "string"}}},
        "required": ["diet"],
    }  # fmt: skip
    fake_llm.reply(traits_reply({"diet": "carnivore"})).reply(traits_reply({"diet": "vegan", "allergies": ["nuts"], "mood": "ok"}))
    conv = ConversationMemory(memory, user_id="bo", llm=fake_llm.client(), user_analysis_memory=True, user_profile_schema=schema)
    profile = conv.save_turn("vegan, allergic to nuts", "ok").profile
    assert {n: t.value for n, t in profile.traits.items()} == {"diet": "vegan", "allergies": ["nuts"]}
    assert (profile.schema_name, profile.schema_version) == ("Diet", "1")
    assert len(fake_llm.requests) == 2


def test_bad_profile_options_are_refused(memory, fake_llm):
    """No LLM calls: construction checks."""
    llm = fake_llm.client()
    for bad in ({"type": "object"}, {"properties": {"a": {"type": "nonsense"}}}, "Prefs", Prefs()):
        with pytest.raises(engram.InvalidInput, match="user_profile_schema"):
            ConversationMemory(memory, llm=llm, user_analysis_memory=True, user_profile_schema=bad)
    with pytest.raises(engram.InvalidInput, match="not both"):
        ConversationMemory(memory, llm=llm, user_profile_schema=Prefs, dynamic_user_profile=True)
    with pytest.raises(engram.InvalidInput, match="profile_mode"):
        ConversationMemory(memory, llm=llm, user_memory_mode="merge")
    with pytest.raises(engram.InvalidInput, match="not both"):
        ConversationMemory(memory, llm=llm, profile_mode="update", user_memory_mode="replace")


def test_user_memory_mode_is_an_alias_of_profile_mode(memory, fake_llm):
    """Fake server: two valid profiles; replace mode keeps only the second."""
    fake_llm.reply(traits_reply({"city": "Oslo"})).reply(traits_reply({"drink": "tea"}))
    conv = ConversationMemory(memory, user_id="u", llm=fake_llm.client(), user_analysis_memory=True, user_memory_mode="replace")
    assert conv.profile_mode == "replace"
    conv.save_turn("I live in Oslo", "ok")
    assert set(conv.save_turn("I drink tea", "ok").profile.traits) == {"drink"}


def test_dynamic_profiles_are_capped(memory, fake_llm):
    """Fake server: too many fields, then a too long value, a nested value, then fitting replies."""
    too_many = {f"field_{i}": i for i in range(MAX_DYNAMIC_FIELDS + 1)}
    fake_llm.reply(traits_reply(too_many)).reply(traits_reply({"bio": "x" * (MAX_DYNAMIC_VALUE_CHARS + 1)}))
    fake_llm.reply(traits_reply({"pets": ["cat"]}))
    conv = ConversationMemory(
        memory, user_id="u", llm=fake_llm.client(output_retries=2), user_analysis_memory=True, dynamic_user_profile=True
    )
    with pytest.raises(engram.LLMOutputError):
        conv.save_turn("lots about me", "ok")
    assert memory.profile("u") is None
    assert "characters" in fake_llm.requests[2]["messages"][-1]["content"]  # the long value was refused
    # Within the caps: accepted; the stored profile never holds more than the cap,
    # the least recently updated fields go first.
    first = {f"old_{i}": i for i in range(MAX_DYNAMIC_FIELDS)}
    fake_llm.reply(traits_reply(first)).reply(traits_reply({"pet": "cat", "city": "Oslo"}))
    conv.save_turn("first", "ok")
    profile = conv.save_turn("second", "ok").profile
    assert len(profile.traits) == MAX_DYNAMIC_FIELDS
    assert {"pet", "city"} <= set(profile.traits)
    assert profile.schema_name is None
