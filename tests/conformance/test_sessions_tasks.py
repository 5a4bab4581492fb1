"""Sessions and tasks: lifecycle, listing and the errors of each step."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest

import engram


def tick() -> None:
    time.sleep(0.002)


# -- sessions --------------------------------------------------------------------


def test_session_start(memory):
    session = memory.session_start({"user": "ada", "nested": {"x": [1, 2]}})
    assert isinstance(session, engram.Session)
    assert uuid.UUID(session.id).version == 4
    assert session.status == "active"
    assert session.metadata == {"user": "ada", "nested": {"x": [1, 2]}}
    assert session.started_at.tzinfo is not None
    assert session.ended_at is None
    assert memory.session_get(session.id) == session


def test_session_start_without_metadata(memory):
    session = memory.session_start()
    assert session.metadata == {}
    assert memory.session_get(session.id).metadata == {}


def test_session_get_unknown_is_none(memory):
    assert memory.session_get(str(uuid.uuid4())) is None


@pytest.mark.parametrize("status", ["ended", "error"])
def test_session_end(memory, status):
    session = memory.session_start({"k": "v"})
    tick()
    ended = memory.session_end(session.id, status=status)
    assert ended.id == session.id
    assert ended.status == status
    assert ended.metadata == {"k": "v"}
    assert ended.started_at == session.started_at
    assert ended.ended_at is not None and ended.ended_at > session.started_at
    assert memory.session_get(session.id) == ended


def test_session_end_defaults_to_ended(memory):
    session = memory.session_start()
    assert memory.session_end(session.id).status == "ended"


def test_ending_an_unknown_session_is_not_found(memory):
    with pytest.raises(engram.NotFound) as info:
        memory.session_end(str(uuid.uuid4()))
    assert isinstance(info.value, KeyError)
    assert "session" in str(info.value)


def test_ending_twice_is_a_conflict(memory):
    session = memory.session_start()
    ended = memory.session_end(session.id)
    with pytest.raises(engram.Conflict, match="already ended"):
        memory.session_end(session.id, status="error")
    assert memory.session_get(session.id) == ended


@pytest.mark.parametrize("status", ["active", "closed", "", None, "ENDED"])
def test_session_end_rejects_bad_status(memory, status):
    session = memory.session_start()
    with pytest.raises(engram.InvalidInput, match="status"):
        memory.session_end(session.id, status=status)
    assert memory.session_get(session.id).status == "active"


def test_session_start_rejects_bad_metadata(memory):
    with pytest.raises(engram.InvalidInput, match="metadata"):
        memory.session_start(["not", "a", "dict"])
    with pytest.raises(engram.InvalidInput, match="metadata"):
        memory.session_start({"x": object()})
    assert memory.sessions() == []


def test_sessions_newest_started_first_with_paging(memory):
    started = []
    for _ in range(5):
        started.append(memory.session_start().id)
        tick()
    newest_first = list(reversed(started))
    assert [s.id for s in memory.sessions()] == newest_first
    assert [s.id for s in memory.sessions(limit=2)] == newest_first[:2]
    assert [s.id for s in memory.sessions(limit=2, offset=2)] == newest_first[2:4]
    assert memory.sessions(offset=5) == []


def test_sessions_by_status(memory):
    active = memory.session_start()
    ended = memory.session_start()
    failed = memory.session_start()
    memory.session_end(ended.id)
    memory.session_end(failed.id, status="error")
    assert [s.id for s in memory.sessions(status="active")] == [active.id]
    assert [s.id for s in memory.sessions(status="ended")] == [ended.id]
    assert [s.id for s in memory.sessions(status="error")] == [failed.id]
    assert len(memory.sessions()) == 3


def test_sessions_ended_before(memory):
    early = memory.session_start()
    late = memory.session_start()
    still_active = memory.session_start()
    memory.session_end(early.id)
    tick()
    cutoff = datetime.now(timezone.utc)
    tick()
    memory.session_end(late.id, status="error")

    assert [s.id for s in memory.sessions(ended_before=cutoff)] == [early.id]
    assert {s.id for s in memory.sessions(ended_before=datetime.now(timezone.utc))} == {early.id, late.id}
    assert memory.sessions(ended_before=datetime(2000, 1, 1, tzinfo=timezone.utc)) == []
    assert memory.sessions(status="error", ended_before=cutoff) == []
    assert still_active.id not in {s.id for s in memory.sessions(ended_before=datetime.now(timezone.utc))}


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"status": "finished"}, "status"),
        ({"ended_before": "2024-01-01"}, "ended_before"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_sessions_rejects_bad_arguments(memory, kwargs, word):
    with pytest.raises(engram.InvalidInput, match=word):
        memory.sessions(**kwargs)


@pytest.mark.parametrize("bad_id", ["", "a\x00b", 42, None])
def test_session_ids_are_validated(memory, bad_id):
    with pytest.raises(engram.InvalidInput, match="session id"):
        memory.session_get(bad_id)
    with pytest.raises(engram.InvalidInput, match="session id"):
        memory.session_end(bad_id)


# -- tasks ------------------------------------------------------------------------


def test_task_create(memory):
    session = memory.session_start()
    task = memory.task_create("researcher", {"question": "why?", "n": [1, 2]}, session_id=session.id)
    assert isinstance(task, engram.Task)
    assert uuid.UUID(task.id).version == 4
    assert task.agent_type == "researcher"
    assert task.input == {"question": "why?", "n": [1, 2]}
    assert task.output is None
    assert task.status == "pending"
    assert task.session_id == session.id
    assert task.created_at == task.updated_at
    assert task.completed_at is None
    assert memory.task_get(task.id) == task


@pytest.mark.parametrize("value", ["plain text", 42, 1.5, True, None, ["a", 1], {"deep": {"er": [None]}}])
def test_task_input_and_output_round_trip_any_json(memory, value):
    task = memory.task_create("agent", value)
    assert memory.task_get(task.id).input == value
    if value is not None:
        memory.task_update(task.id, "completed", output=value)
        assert memory.task_get(task.id).output == value


def test_task_without_session(memory):
    task = memory.task_create("agent", "input")
    assert task.session_id is None
    assert memory.task_get(task.id) == task


def test_task_for_unknown_session_is_not_found(memory):
    with pytest.raises(engram.NotFound, match="session"):
        memory.task_create("agent", "input", session_id=str(uuid.uuid4()))
    assert memory.tasks() == []


def test_task_get_unknown_is_none(memory):
    assert memory.task_get(str(uuid.uuid4())) is None


def test_task_update_unknown_is_not_found(memory):
    with pytest.raises(engram.NotFound) as info:
        memory.task_update(str(uuid.uuid4()), "running")
    assert isinstance(info.value, KeyError)
    assert "task" in str(info.value)


def test_task_lifecycle(memory):
    task = memory.task_create("agent", "input")
    tick()
    running = memory.task_update(task.id, "running")
    assert running.status == "running"
    assert running.completed_at is None
    assert running.updated_at > task.updated_at
    assert running.created_at == task.created_at
    assert memory.task_get(task.id) == running

    tick()
    done = memory.task_update(task.id, "completed", output={"answer": 42})
    assert done.status == "completed"
    assert done.output == {"answer": 42}
    assert done.completed_at is not None and done.completed_at >= done.updated_at
    assert memory.task_get(task.id) == done


def test_failed_sets_completed_at(memory):
    task = memory.task_create("agent", "input")
    failed = memory.task_update(task.id, "failed", output="boom")
    assert failed.status == "failed"
    assert failed.completed_at is not None
    assert memory.task_get(task.id).completed_at == failed.completed_at


def test_task_update_without_output_keeps_it(memory):
    task = memory.task_create("agent", "input")
    memory.task_update(task.id, "running", output={"partial": 1})
    updated = memory.task_update(task.id, "completed")
    assert updated.output == {"partial": 1}
    assert memory.task_get(task.id).output == {"partial": 1}


@pytest.mark.parametrize("status", ["done", "", None, "PENDING"])
def test_task_update_rejects_bad_status(memory, status):
    task = memory.task_create("agent", "input")
    with pytest.raises(engram.InvalidInput, match="status"):
        memory.task_update(task.id, status)
    assert memory.task_get(task.id) == task


@pytest.mark.parametrize(
    "args, word",
    [
        (("", "input"), "agent_type"),
        ((None, "input"), "agent_type"),
        (("a" * 257, "input"), "agent_type"),
        (("agent", object()), "input"),
        (("agent", {"x": float("nan")}), "input"),
    ],
)
def test_task_create_rejects_bad_input(memory, args, word):
    with pytest.raises(engram.InvalidInput, match=word):
        memory.task_create(*args)
    assert memory.tasks() == []


def test_task_update_rejects_non_json_output(memory):
    task = memory.task_create("agent", "input")
    with pytest.raises(engram.InvalidInput, match="output"):
        memory.task_update(task.id, "completed", output={1, 2})
    assert memory.task_get(task.id) == task


def test_tasks_listing(memory):
    s1 = memory.session_start()
    s2 = memory.session_start()
    created = []
    for i, session in enumerate([s1, s1, s2, None, s1]):
        created.append(memory.task_create(f"agent{i}", i, session_id=None if session is None else session.id))
        tick()
    memory.task_update(created[0].id, "completed")
    memory.task_update(created[2].id, "running")
    memory.task_update(created[4].id, "completed")

    ids = [t.id for t in created]
    assert [t.id for t in memory.tasks()] == list(reversed(ids))  # newest created first
    assert [t.id for t in memory.tasks(session_id=s1.id)] == [ids[4], ids[1], ids[0]]
    assert [t.id for t in memory.tasks(session_id=s2.id)] == [ids[2]]
    assert [t.id for t in memory.tasks(status="completed")] == [ids[4], ids[0]]
    assert [t.id for t in memory.tasks(status="pending")] == [ids[3], ids[1]]
    assert [t.id for t in memory.tasks(session_id=s1.id, status="completed")] == [ids[4], ids[0]]
    assert [t.id for t in memory.tasks(session_id=s1.id, status="running")] == []
    assert [t.id for t in memory.tasks(limit=2, offset=1)] == [ids[3], ids[2]]
    assert memory.tasks(session_id=str(uuid.uuid4())) == []


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"status": "done"}, "status"),
        ({"session_id": ""}, "session id"),
        ({"limit": 10_001}, "limit"),
        ({"offset": "1"}, "offset"),
    ],
)
def test_tasks_rejects_bad_arguments(memory, kwargs, word):
    with pytest.raises(engram.InvalidInput, match=word):
        memory.tasks(**kwargs)


def test_ending_a_session_keeps_its_tasks(memory):
    session = memory.session_start()
    task = memory.task_create("agent", "x", session_id=session.id)
    memory.session_end(session.id)
    assert memory.task_get(task.id) == task
    assert [t.id for t in memory.tasks(session_id=session.id)] == [task.id]


def test_naive_ended_before_means_utc(memory):
    session = memory.session_start()
    memory.session_end(session.id)
    naive_future = datetime(2100, 1, 1)
    naive_past = datetime(2000, 1, 1)
    assert [s.id for s in memory.sessions(ended_before=naive_future)] == [session.id]
    assert memory.sessions(ended_before=naive_past) == []
