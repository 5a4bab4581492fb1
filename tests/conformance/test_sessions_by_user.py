"""Sessions by user and agent, session metadata, and deleting a session with all it holds
(issue 16), on every backend."""

from __future__ import annotations

import time

import pytest

import engram

pytestmark = pytest.mark.requires("conversation")


def test_a_session_started_by_a_message_takes_its_user_and_agent(memory):
    memory.add_message("chat-1", "user", "hi", user_id="ana", agent_id="helper")
    memory.add_message("chat-1", "assistant", "hello", user_id="someone-else")  # the first message decided
    session = memory.session_get("chat-1")
    assert (session.user_id, session.agent_id) == ("ana", "helper")
    started = memory.session_start({"topic": "x"}, user_id="bo", agent_id="planner")
    assert memory.session_get(started.id) == started
    assert (started.user_id, started.agent_id) == ("bo", "planner")
    assert memory.session_start().user_id is None


def test_sessions_by_user_agent_status_sorted_and_paged(memory):
    ids = []
    for i, (user, agent) in enumerate([("ana", "a1"), ("ana", "a2"), ("bo", "a1"), ("ana", "a1")]):
        ids.append(memory.add_message(f"s{i}", "user", "hi", user_id=user, agent_id=agent).session_id)
        time.sleep(0.002)  # distinct start times
    memory.session_end("s3")
    newest = [s.id for s in memory.sessions()]
    assert newest == ["s3", "s2", "s1", "s0"]
    assert [s.id for s in memory.sessions(sort="oldest")] == ["s0", "s1", "s2", "s3"]
    assert [s.id for s in memory.sessions(user_id="ana")] == ["s3", "s1", "s0"]
    assert [s.id for s in memory.sessions(user_id="ana", agent_id="a1")] == ["s3", "s0"]
    assert [s.id for s in memory.sessions(agent_id="a1", sort="oldest")] == ["s0", "s2", "s3"]
    assert [s.id for s in memory.sessions(user_id="ana", status="active")] == ["s1", "s0"]
    assert [s.id for s in memory.sessions(user_id="ana", limit=1, offset=1)] == ["s1"]
    assert [s.id for s in memory.sessions(user_id="ana", sort="oldest", limit=2, offset=1)] == ["s1", "s3"]
    assert memory.sessions(user_id="nobody") == []


@pytest.mark.parametrize(
    "kwargs, field",
    [({"sort": "started_at"}, "sort"), ({"sort": None}, "sort"), ({"user_id": ""}, "user_id"),
     ({"agent_id": 7}, "agent_id"), ({"status": "paused"}, "status")],
)  # fmt: skip
def test_bad_session_listing_arguments_are_invalid_input(memory, kwargs, field):
    with pytest.raises(engram.InvalidInput, match=field):
        memory.sessions(**kwargs)


def test_session_metadata_get_and_update(memory):
    s = memory.session_start({"topic": "trip", "tag": "a"})
    assert memory.session_metadata(s.id) == {"topic": "trip", "tag": "a"}
    updated = memory.session_update(s.id, {"tag": None, "lang": "no"})
    assert updated.metadata == {"topic": "trip", "lang": "no"}
    assert memory.session_get(s.id) == updated
    assert memory.session_update(s.id, {"only": 1}, replace=True).metadata == {"only": 1}
    assert memory.session_metadata(s.id) == {"only": 1}
    with pytest.raises(engram.NotFound):
        memory.session_metadata("missing")
    with pytest.raises(engram.NotFound):
        memory.session_update("missing", {"a": 1})
    with pytest.raises(engram.InvalidInput):
        memory.session_update(s.id, ["not", "a", "dict"])
    assert memory.session_metadata(s.id) == {"only": 1}  # unchanged by the bad calls


def test_session_delete_removes_everything_it_holds_but_the_profile(memory):
    memory.add_message("doomed", "user", "hello", user_id="ana")
    memory.add_message("doomed", "assistant", "hi")
    memory.summary_save("doomed", "a greeting", message_count=2)
    memory.checkpoint_save("doomed", {"step": 1})
    task = memory.task_create("agent", {"x": 1}, session_id="doomed")
    memory.profile_save("ana", {"name": {"value": "Ana", "source_message_ids": []}})
    memory.add_message("kept", "user", "hello there", user_id="ana")
    before = memory.stats()

    assert memory.session_delete("doomed") is True
    assert memory.session_get("doomed") is None
    for read in (memory.history, memory.summary, memory.checkpoints):
        with pytest.raises(engram.NotFound):
            read("doomed")
    assert memory.task_get(task.id) is None
    assert memory.profile("ana").traits["name"].value == "Ana"  # the user's, not the session's
    assert [m.content for m in memory.history("kept")] == ["hello there"]
    after = memory.stats()
    assert (before.messages - after.messages, before.summaries - after.summaries) == (2, 1)
    assert (before.checkpoints - after.checkpoints, before.sessions - after.sessions) == (1, 1)
    assert memory.search_messages("hello", mode="fts").count == 1  # only "kept" is found
    assert memory.session_delete("doomed") is False  # gone already
    with pytest.raises(engram.InvalidInput):
        memory.session_delete("")
    # An id used again starts afresh.
    memory.add_message("doomed", "user", "new start")
    assert [m.content for m in memory.history("doomed")] == ["new start"]


@pytest.mark.requires("message_vector")
def test_session_delete_removes_the_message_vectors(memory):
    memory.add_message("doomed", "user", "the cat", embedding=[1.0, 0.0, 0.0, 0.0])
    memory.add_message("kept", "user", "the dog", embedding=[0.0, 1.0, 0.0, 0.0])
    assert memory.backend.count_message_vectors() == 2
    memory.session_delete("doomed")
    assert memory.backend.count_message_vectors() == 1
    hits = memory.search_messages("", mode="vector", vector=[1.0, 0.0, 0.0, 0.0])
    assert [h.message.session_id for h in hits.results] == ["kept"]


async def test_async_sessions_by_user_and_delete(async_memory):
    await async_memory.add_message("a", "user", "hi", user_id="ana")
    assert [s.id for s in await async_memory.sessions(user_id="ana")] == ["a"]
    assert (await async_memory.session_update("a", {"k": 1})).metadata == {"k": 1}
    assert await async_memory.session_metadata("a") == {"k": 1}
    assert await async_memory.session_delete("a") is True
    assert await async_memory.session_get("a") is None
