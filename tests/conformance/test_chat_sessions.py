"""Chat histories like the ones users know, on every backend.

Writing a message to a session id never seen before starts that session (as
LangChain's and Upsonic's histories take any session id); reading a session
that does not exist (history, summary, checkpoints, deleting its history) is
NotFound; a caller's new session id is checked with a clear InvalidInput.
"""

from __future__ import annotations

import pytest

import engram
from engram.conversation import ConversationMemory

pytestmark = pytest.mark.requires("conversation")

BAD_NEW_IDS = ["", "a b", "a/b", "-leading-dash", "x" * 129, "tab\there", "naïve", 42]


def test_a_message_to_a_new_session_id_starts_that_session(memory):
    message = memory.add_message("user-42:chat-1", "user", "hello")

    assert message.session_id == "user-42:chat-1"
    session = memory.session_get("user-42:chat-1")
    assert session is not None and session.status == "active" and session.ended_at is None
    assert [m.content for m in memory.history("user-42:chat-1")] == ["hello"]
    memory.add_message("user-42:chat-1", "assistant", "hi")  # the second write finds it
    assert [m.content for m in memory.history("user-42:chat-1")] == ["hello", "hi"]
    assert [s.id for s in memory.sessions()] == ["user-42:chat-1"]


def test_add_messages_starts_every_new_session_it_names(memory):
    known = memory.session_start()
    stored = memory.add_messages(
        [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two", "session_id": "b.2"},
            {"role": "user", "content": "three", "session_id": known.id},
        ],
        session_id="a@1",
    )
    assert [m.session_id for m in stored] == ["a@1", "b.2", known.id]
    assert {s.id for s in memory.sessions()} == {"a@1", "b.2", known.id}
    assert [m.content for m in memory.history("b.2")] == ["two"]


@pytest.mark.parametrize("bad", BAD_NEW_IDS, ids=repr)
def test_a_bad_new_session_id_is_invalid_input_and_stores_nothing(memory, bad):
    with pytest.raises(engram.InvalidInput, match="session id"):
        memory.add_message(bad, "user", "hi")
    with pytest.raises(engram.InvalidInput, match="session id"):
        memory.add_messages([{"role": "user", "content": "hi"}], session_id=bad)
    assert memory.sessions() == []
    assert memory.stats().messages == 0


def test_the_new_session_id_rule_names_what_to_use(memory):
    with pytest.raises(engram.InvalidInput) as error:
        memory.add_message("a b", "user", "hi")
    assert "letters, digits" in str(error.value) and "128" in str(error.value)


def test_reading_an_unknown_session_is_not_found(memory):
    for read in (
        lambda: memory.history("never-seen"),
        lambda: memory.history("never-seen", limit=5),
        lambda: memory.summary("never-seen"),
        lambda: memory.checkpoints("never-seen"),
        lambda: memory.delete_history("never-seen"),
    ):
        with pytest.raises(engram.NotFound, match="session never-seen does not exist"):
            read()
    assert memory.sessions() == []  # reading starts nothing


def test_reading_a_known_empty_session_is_empty_not_an_error(memory):
    session = memory.session_start()
    assert memory.history(session.id) == []
    assert memory.summary(session.id) is None
    assert memory.checkpoints(session.id) == []
    assert memory.delete_history(session.id) == 0


def test_summaries_and_checkpoints_still_need_an_existing_session(memory):
    with pytest.raises(engram.NotFound):
        memory.summary_save("never-seen", "x", message_count=1)
    with pytest.raises(engram.NotFound):
        memory.checkpoint_save("never-seen", {})
    assert memory.sessions() == []


async def test_async_writes_start_sessions_and_reads_are_not_found(async_memory):
    await async_memory.add_message("async-1", "user", "hello")
    await async_memory.add_messages([{"role": "assistant", "content": "hi"}], session_id="async-2")
    assert [m.content for m in await async_memory.history("async-1")] == ["hello"]
    assert (await async_memory.session_get("async-2")).status == "active"
    with pytest.raises(engram.NotFound):
        await async_memory.history("never-seen")
    with pytest.raises(engram.InvalidInput):
        await async_memory.add_message("a b", "user", "x")


def test_conversation_memory_takes_any_session_id(memory):
    conversation = ConversationMemory(memory, session_id="thread-7")
    conversation.save_turn("hi", "hello")
    assert [m.content for m in memory.history("thread-7")] == ["hi", "hello"]
    with pytest.raises(engram.InvalidInput):
        ConversationMemory(memory, session_id="not valid")
