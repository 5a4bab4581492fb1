"""Conversation memory on every backend: messages, history, message search,
summaries, profiles, HITL checkpoints and retention (``prune``).

Backends without the ``conversation`` capability skip this whole module.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import engram

pytestmark = pytest.mark.requires("conversation")

CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}


@pytest.fixture
def session(memory):
    return memory.session_start({"purpose": "chat"})


def talk(memory, session_id, *contents, user_id=None):
    roles = ["user", "assistant"]
    return [memory.add_message(session_id, roles[i % 2], c, user_id=user_id) for i, c in enumerate(contents)]


@pytest.fixture
def clock(monkeypatch):
    """Shift the facade's clock: ``clock(days=-10)`` makes new records 10 days old."""

    def shift(**delta):
        offset = timedelta(**delta)
        for module in ("engram.memory.chat", "engram.memory.entries", "engram.memory.sessions", "engram.memory.runs", "engram.memory.profiles", "engram.memory.retention"):
            monkeypatch.setattr(f"{module}.utcnow", lambda: datetime.now(timezone.utc) + offset)

    return shift


# -- messages ----------------------------------------------------------------------


def test_add_message_returns_a_complete_message(memory, session):
    m = memory.add_message(
        session.id, "user", "Hello there", user_id="u1", agent_id="bot", metadata={"lang": "en"}
    )
    assert isinstance(m, engram.Message)
    assert uuid.UUID(m.id).version == 4
    assert (m.session_id, m.role, m.content, m.user_id, m.agent_id) == (session.id, "user", "Hello there", "u1", "bot")
    assert m.metadata == {"lang": "en"}
    assert m.tool_calls == [] and m.tool_call_id is None and m.attachments == []
    assert m.created_at.tzinfo is not None
    assert m.seq > 0
    assert memory.history(session.id) == [m]
    assert memory.message_get(m.id) == m


def test_history_is_oldest_first_with_growing_seq(memory, session):
    sent = talk(memory, session.id, "one", "two", "three", "four")
    history = memory.history(session.id)
    assert [m.content for m in history] == ["one", "two", "three", "four"]
    assert [m.seq for m in history] == sorted(m.seq for m in history)
    assert len({m.seq for m in history}) == 4
    assert history == sent


def test_messages_of_one_transaction_keep_their_order(memory, session):
    # Same timestamp for all: seq alone must keep the order.
    stored = memory.add_messages([{"role": "user", "content": f"m{i}"} for i in range(30)], session_id=session.id)
    assert len({m.created_at for m in stored}) == 1
    assert [m.content for m in memory.history(session.id)] == [f"m{i}" for i in range(30)]


def test_history_limit_is_the_last_n_oldest_first(memory, session):
    talk(memory, session.id, *[f"m{i}" for i in range(10)])
    assert [m.content for m in memory.history(session.id, limit=3)] == ["m7", "m8", "m9"]
    assert len(memory.history(session.id, limit=100)) == 10


def test_history_before_and_after_a_message(memory, session):
    sent = talk(memory, session.id, *[f"m{i}" for i in range(6)])
    assert [m.content for m in memory.history(session.id, after=sent[2].id)] == ["m3", "m4", "m5"]
    assert [m.content for m in memory.history(session.id, before=sent[2].id)] == ["m0", "m1"]
    assert [m.content for m in memory.history(session.id, before=sent[5], after=sent[1])] == ["m2", "m3", "m4"]
    assert [m.content for m in memory.history(session.id, before=sent[5].id, limit=2)] == ["m3", "m4"]


def test_history_before_and_after_a_time(memory, session, clock):
    clock(days=-2)
    old = memory.add_message(session.id, "user", "old")
    clock(days=0)
    new = memory.add_message(session.id, "user", "new")
    middle = old.created_at + timedelta(days=1)
    assert memory.history(session.id, after=middle) == [new]
    assert memory.history(session.id, before=middle) == [old]
    naive = middle.replace(tzinfo=None)  # naive means UTC
    assert memory.history(session.id, before=naive) == [old]


def test_history_bound_from_another_session_is_not_found(memory, session):
    other = memory.session_start()
    foreign = memory.add_message(other.id, "user", "elsewhere")
    with pytest.raises(engram.NotFound):
        memory.history(session.id, after=foreign.id)
    with pytest.raises(engram.NotFound):
        memory.history(session.id, before="no-such-message")


def test_histories_of_sessions_are_separate(memory, session):
    other = memory.session_start()
    talk(memory, session.id, "a1", "a2")
    talk(memory, other.id, "b1")
    assert [m.content for m in memory.history(session.id)] == ["a1", "a2"]
    assert [m.content for m in memory.history(other.id)] == ["b1"]
    with pytest.raises(engram.NotFound):  # unknown sessions: tests/conformance/test_chat_sessions.py
        memory.history(str(uuid.uuid4()))


def test_a_bad_new_session_id_stores_nothing(memory, session):
    with pytest.raises(engram.InvalidInput):
        memory.add_message("no such session", "user", "hi")
    with pytest.raises(engram.InvalidInput):
        memory.add_messages(
            [{"session_id": session.id, "role": "user", "content": "ok"},
             {"session_id": "no such session", "role": "user", "content": "lost"}]
        )  # fmt: skip
    assert memory.history(session.id) == []
    assert memory.session_get("no such session") is None


def test_messages_may_be_added_to_an_ended_session(memory, session):
    memory.session_end(session.id)
    memory.add_message(session.id, "system", "post-mortem note")
    assert len(memory.history(session.id)) == 1


def test_tool_calls_attachments_and_unicode_round_trip(memory, session):
    call = memory.add_message(session.id, "assistant", None, tool_calls=[CALL])
    result = memory.add_message(
        session.id, "tool", '{"temp": -3}', tool_call_id="call_1",
        attachments=[{"uri": "blob://sha256/abc", "name": "chart.png", "media_type": "image/png", "size_bytes": 1234}],
    )  # fmt: skip
    weird = memory.add_message(session.id, "user", "línea\n🧠 \"q\" NUL\x00end", metadata={"n": {"x": [1, 2.5, None]}})
    history = memory.history(session.id)
    assert history == [call, result, weird]
    assert history[0].content == "" and history[0].tool_calls == [CALL]
    assert history[1].tool_call_id == "call_1"
    assert history[1].attachments == [
        engram.Attachment(uri="blob://sha256/abc", name="chart.png", media_type="image/png", size_bytes=1234)
    ]
    assert history[2].content == "línea\n🧠 \"q\" NUL\x00end"
    assert history[2].metadata == {"n": {"x": [1, 2.5, None]}}


@pytest.mark.parametrize(
    "role, content, fields, fragment",
    [
        ("robot", "x", {}, "role"),
        ("user", 42, {}, "content"),
        ("user", "x", {"tool_calls": [CALL]}, "tool_calls"),
        ("assistant", "x", {"tool_calls": "call"}, "tool_calls"),
        ("assistant", "x", {"tool_call_id": "c"}, "tool_call_id"),
        ("user", "x", {"metadata": ["not", "a", "dict"]}, "metadata"),
        ("user", "x", {"user_id": ""}, "user_id"),
        ("user", "x", {"attachments": [{"name": "no uri"}]}, "attachment"),
        ("user", "x", {"attachments": ["file.txt"]}, "attachment"),
    ],
)
def test_invalid_messages_are_rejected(memory, session, role, content, fields, fragment):
    with pytest.raises(engram.InvalidInput, match=fragment):
        memory.add_message(session.id, role, content, **fields)
    assert memory.history(session.id) == []


def test_content_over_the_limit_is_rejected(memory_factory):
    memory = memory_factory(max_content_bytes=10)
    s = memory.session_start()
    with pytest.raises(engram.ContentTooLarge):
        memory.add_message(s.id, "user", "x" * 11)


def test_add_messages_is_all_or_nothing(memory, session):
    with pytest.raises(engram.InvalidInput, match="message 1"):
        memory.add_messages([{"role": "user", "content": "ok"}, {"role": "nobody", "content": "bad"}], session_id=session.id)
    with pytest.raises(engram.InvalidInput, match="unknown field"):
        memory.add_messages([{"role": "user", "content": "ok", "colour": "red"}], session_id=session.id)
    assert memory.history(session.id) == []
    assert memory.add_messages([], session_id=session.id) == []


def test_delete_history(memory, session):
    other = memory.session_start()
    talk(memory, session.id, "alpha", "beta", "gamma")
    talk(memory, other.id, "alpha again")
    memory.summary_save(session.id, "greek letters", message_count=3)
    assert memory.delete_history(session.id) == 3
    assert memory.history(session.id) == []
    assert memory.summary(session.id) is None
    assert memory.delete_history(session.id) == 0
    assert [m.content for m in memory.history(other.id)] == ["alpha again"]
    assert memory.session_get(session.id) is not None  # the session itself stays
    found = memory.search_messages("alpha")
    assert [h.message.session_id for h in found.results] == [other.id]


# -- message search ----------------------------------------------------------------


def test_search_messages_ranks_and_stems(memory, session):
    talk(memory, session.id, "I went running in the hills", "Great! Running is healthy. Running daily?", "No, I swim")
    result = memory.search_messages("run")
    assert isinstance(result, engram.MessageSearchResult)
    assert result.count == 2 == len(result.results)
    assert result.results[0].message.content.startswith("Great!")  # two hits beat one
    assert result.results[0].score >= result.results[1].score > 0
    assert {h.match_type for h in result.results} == {"fts"}


def test_search_messages_query_language(memory, session):
    talk(memory, session.id, "red apple pie", "green apple", "red cherry", "blue sky")
    contents = lambda q: sorted(h.message.content for h in memory.search_messages(q).results)  # noqa: E731
    assert contents('"apple pie"') == ["red apple pie"]
    assert contents("apple -red") == ["green apple"]
    assert contents("cherry OR sky") == ["blue sky", "red cherry"]
    assert contents("app*") == ["green apple", "red apple pie"]
    assert contents("red AND (pie OR cherry)") == ["red apple pie", "red cherry"]
    assert contents("banana") == []


@pytest.mark.parametrize("query", ["", '"unclosed', "AND", "-only", "x" * 5000])
def test_search_messages_bad_queries_raise_query_syntax_error(memory, session, query):
    talk(memory, session.id, "something")
    with pytest.raises(engram.QuerySyntaxError):
        memory.search_messages(query)


def test_search_messages_scoped_by_session_and_user(memory):
    a, b = memory.session_start(), memory.session_start()
    memory.add_message(a.id, "user", "deploy the service", user_id="alice")
    memory.add_message(a.id, "assistant", "deploy done")
    memory.add_message(b.id, "user", "deploy again", user_id="bob")
    memory.add_message(b.id, "user", "deploy as alice", user_id="alice")
    sessions = lambda **kw: sorted(h.message.content for h in memory.search_messages("deploy", **kw).results)  # noqa: E731
    assert sessions() == ["deploy again", "deploy as alice", "deploy done", "deploy the service"]
    assert sessions(session_id=a.id) == ["deploy done", "deploy the service"]
    assert sessions(user_id="alice") == ["deploy as alice", "deploy the service"]
    assert sessions(session_id=b.id, user_id="alice") == ["deploy as alice"]
    assert sessions(user_id="carol") == []
    assert memory.search_messages("deploy", limit=1).count == 1


# -- summaries and profiles ----------------------------------------------------------


def test_summary_save_and_replace(memory, session):
    assert memory.summary(session.id) is None
    first = memory.summary_save(session.id, "They met.", message_count=2, last_seq=7)
    assert isinstance(first, engram.Summary)
    assert memory.summary(session.id) == first
    second = memory.summary_save(session.id, "They met and talked.", message_count=5, last_seq=11)
    stored = memory.summary(session.id)
    assert (stored.content, stored.message_count, stored.last_seq) == ("They met and talked.", 5, 11)
    assert stored.updated_at >= first.updated_at
    assert second == stored


def test_summary_of_unknown_session_is_not_found(memory):
    with pytest.raises(engram.NotFound):
        memory.summary_save("no-such-session", "x", message_count=1)
    with pytest.raises(engram.InvalidInput):
        memory.summary_save("s", "x", message_count=-1)


def test_profile_update_merges_and_replace_replaces(memory):
    assert memory.profile("u1") is None
    p = memory.profile_save("u1", {"city": {"value": "Oslo", "source_message_ids": ["m1"]}, "diet": {"value": "vegan", "source_message_ids": ["m2"]}})
    assert isinstance(p, engram.Profile)
    assert set(p.traits) == {"city", "diet"}
    p = memory.profile_save("u1", {"city": {"value": "Oslo", "source_message_ids": ["m3"]}, "diet": {"value": "vegetarian", "source_message_ids": ["m4"]}})
    assert p.traits["city"].source_message_ids == ["m1", "m3"]  # restated: sources accumulate
    assert p.traits["diet"].value == "vegetarian" and p.traits["diet"].source_message_ids == ["m4"]
    p = memory.profile_save("u1", {"diet": {"value": None, "source_message_ids": ["m5"]}})
    assert set(p.traits) == {"city"}  # null removes
    p = memory.profile_save("u1", {"pet": engram.Trait(value={"kind": "cat"}, source_message_ids=["m6"], updated_at=datetime.now(timezone.utc))}, mode="replace")
    assert set(p.traits) == {"pet"} and p.traits["pet"].value == {"kind": "cat"}
    assert memory.profile("u1") == p
    assert memory.profile_delete("u1") is True
    assert memory.profile("u1") is None
    assert memory.profile_delete("u1") is False


def test_profile_validation(memory):
    with pytest.raises(engram.InvalidInput):
        memory.profile_save("u1", {"x": "not a trait"})
    with pytest.raises(engram.InvalidInput):
        memory.profile_save("u1", {"x": {"value": 1}}, mode="merge")
    with pytest.raises(engram.InvalidInput):
        memory.profile_save("u1", {"x": {"value": float("nan")}})
    assert memory.profile("u1") is None


# -- checkpoints ---------------------------------------------------------------------


def test_checkpoint_save_get_list_resume_delete(memory, session):
    state = {"step": 3, "pending": ["approve refund"], "nested": {"ok": True, "n": None}}
    cp = memory.checkpoint_save(session.id, state, run_id="run-1")
    assert isinstance(cp, engram.Checkpoint)
    assert (cp.session_id, cp.run_id, cp.status, cp.resumed_at) == (session.id, "run-1", "paused", None)
    assert memory.checkpoint_get(cp.id) == cp
    later = memory.checkpoint_save(session.id, {"step": 4})
    assert [c.id for c in memory.checkpoints(session.id)] == [later.id, cp.id]  # newest first
    assert memory.checkpoint_resume(cp.id) == state
    resumed = memory.checkpoint_get(cp.id)
    assert resumed.status == "resumed" and resumed.resumed_at is not None
    assert [c.id for c in memory.checkpoints(session.id, status="paused")] == [later.id]
    assert [c.id for c in memory.checkpoints(session.id, status="resumed")] == [cp.id]
    assert memory.checkpoint_delete(cp.id) is True
    assert memory.checkpoint_get(cp.id) is None
    assert memory.checkpoint_delete(cp.id) is False


def test_resuming_twice_is_a_conflict(memory, session):
    cp = memory.checkpoint_save(session.id, {"a": 1})
    memory.checkpoint_resume(cp.id)
    with pytest.raises(engram.Conflict, match="already resumed"):
        memory.checkpoint_resume(cp.id)
    with pytest.raises(engram.NotFound):
        memory.checkpoint_resume("no-such-checkpoint")


def test_concurrent_resumes_have_one_winner(memory, session):
    cp = memory.checkpoint_save(session.id, {"a": 1})
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def resume() -> None:
        barrier.wait()
        try:
            memory.checkpoint_resume(cp.id)
            outcomes.append("won")
        except engram.Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=resume) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]


def test_checkpoint_state_must_be_json(memory, session):
    for bad in (object(), {1, 2}, {"f": float("inf")}, b"bytes"):
        with pytest.raises(engram.InvalidInput):
            memory.checkpoint_save(session.id, bad)
    with pytest.raises(engram.InvalidInput):
        memory.checkpoint_save(session.id, {}, status="running")
    with pytest.raises(engram.NotFound):
        memory.checkpoint_save("no-such-session", {})
    assert memory.checkpoints(session.id) == []


def test_a_checkpoint_saved_as_resumed(memory, session):
    cp = memory.checkpoint_save(session.id, [1, 2], status="resumed")
    assert cp.resumed_at is not None
    with pytest.raises(engram.Conflict):
        memory.checkpoint_resume(cp.id)


# -- retention -----------------------------------------------------------------------


def test_prune_without_arguments_still_only_removes_expired_entries(memory, session):
    talk(memory, session.id, "keep me")
    memory.checkpoint_save(session.id, {})
    report = memory.prune()
    assert isinstance(report, engram.PruneReport)
    assert (report.messages, report.sessions, report.checkpoints, report.dry_run) == (0, 0, 0, False)
    assert len(memory.history(session.id)) == 1


def test_prune_keep_last_per_session(memory, session):
    other = memory.session_start()
    talk(memory, session.id, *[f"a{i}" for i in range(5)])
    talk(memory, other.id, "b0", "b1")
    report = memory.prune(keep_last_per_session=2)
    assert report.messages == 3
    assert [m.content for m in memory.history(session.id)] == ["a3", "a4"]
    assert [m.content for m in memory.history(other.id)] == ["b0", "b1"]
    assert [h.message.content for h in memory.search_messages("a0 OR a4").results] == ["a4"]


def test_prune_older_than_days(memory, clock):
    clock(days=-40)
    ended = memory.session_start()
    task = memory.task_create("agent", {"q": 1}, session_id=ended.id)
    talk(memory, ended.id, "ancient one", "ancient two")
    memory.checkpoint_save(ended.id, {"old": True})
    memory.session_end(ended.id)
    active = memory.session_start()
    talk(memory, active.id, "old but active session")
    old_cp = memory.checkpoint_save(active.id, {"old": True})
    clock(days=0)
    talk(memory, active.id, "fresh")
    fresh_cp = memory.checkpoint_save(active.id, {"fresh": True})
    recent = memory.session_start()
    memory.session_end(recent.id)

    report = memory.prune(older_than_days=30)
    assert (report.messages, report.sessions, report.checkpoints, report.tasks) == (3, 1, 2, 1)
    assert memory.session_get(ended.id) is None
    assert memory.task_get(task.id) is None
    with pytest.raises(engram.NotFound):  # the session went with its messages
        memory.history(ended.id)
    assert memory.session_get(recent.id) is not None  # ended, but recently
    assert [m.content for m in memory.history(active.id)] == ["fresh"]
    assert memory.checkpoint_get(old_cp.id) is None
    assert [c.id for c in memory.checkpoints(active.id)] == [fresh_cp.id]
    assert memory.search_messages("ancient").count == 0


def test_prune_dry_run_counts_and_changes_nothing(memory, session, clock):
    clock(days=-10)
    old = memory.session_start()
    talk(memory, old.id, "x1", "x2", "x3")
    memory.session_end(old.id)
    memory.checkpoint_save(session.id, {})
    clock(days=0)
    talk(memory, session.id, "y1", "y2", "y3")
    memory.store("gone", "soon", ttl=0.001)
    import time

    time.sleep(0.01)
    before = (memory.history(old.id), memory.history(session.id), memory.checkpoints(session.id))
    dry = memory.prune(older_than_days=5, keep_last_per_session=1, dry_run=True)
    assert dry.dry_run is True
    assert (dry.expired_entries, dry.messages, dry.sessions, dry.checkpoints) == (1, 5, 1, 1)
    assert (memory.history(old.id), memory.history(session.id), memory.checkpoints(session.id)) == before
    assert memory.stats().expired_entries == 1
    real = memory.prune(older_than_days=5, keep_last_per_session=1)
    assert real.model_copy(update={"dry_run": True}) == dry


def test_prune_filters_by_session_and_namespace(memory, session):
    other = memory.session_start()
    talk(memory, session.id, "s1", "s2", "s3")
    talk(memory, other.id, "o1", "o2", "o3")
    memory.store("a", "x", namespace="ns1", ttl=0.001)
    memory.store("b", "x", namespace="ns2", ttl=0.001)
    import time

    time.sleep(0.01)
    only_session = memory.prune(keep_last_per_session=1, session_id=session.id)
    assert (only_session.messages, only_session.expired_entries) == (2, 0)  # entries left alone
    assert len(memory.history(other.id)) == 3
    only_namespace = memory.prune(keep_last_per_session=1, namespace="ns1")
    assert (only_namespace.messages, only_namespace.expired_entries) == (0, 1)  # conversation left alone
    assert len(memory.history(other.id)) == 3
    assert memory.prune().expired_entries == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"older_than_days": -1}, {"older_than_days": "7"}, {"keep_last_per_session": -1}, {"keep_last_per_session": 1.5}, {"namespace": ""}],
)
def test_prune_rejects_bad_arguments(memory, kwargs):
    with pytest.raises(engram.InvalidInput):
        memory.prune(**kwargs)


# -- async and persistence -------------------------------------------------------------


async def test_async_conversation_api(async_memory):
    s = await async_memory.session_start()
    await async_memory.add_message(s.id, "user", "hello async")
    await async_memory.add_messages([{"role": "assistant", "content": "hi"}], session_id=s.id)
    assert [m.content for m in await async_memory.history(s.id)] == ["hello async", "hi"]
    assert (await async_memory.search_messages("async")).count == 1
    cp = await async_memory.checkpoint_save(s.id, {"x": 1})
    assert await async_memory.checkpoint_resume(cp.id) == {"x": 1}
    assert (await async_memory.prune(keep_last_per_session=1)).messages == 1
    assert await async_memory.delete_history(s.id) == 1


@pytest.mark.requires("persistent")
def test_conversation_survives_reopening(memory_factory):
    url = memory_factory.url()
    with engram.Memory(url) as first:
        s = first.session_start()
        talk(first, s.id, "remember", "me", user_id="u")
        first.summary_save(s.id, "sum", message_count=2)
        first.profile_save("u", {"k": {"value": 1, "source_message_ids": []}})
        cp = first.checkpoint_save(s.id, {"x": 1})
    with engram.Memory(url) as second:
        assert [m.content for m in second.history(s.id)] == ["remember", "me"]
        assert second.summary(s.id).content == "sum"
        assert second.profile("u").traits["k"].value == 1
        assert second.checkpoint_resume(cp.id) == {"x": 1}
        assert second.search_messages("remember", user_id="u").count == 1
        third = second.add_message(s.id, "user", "again")
        assert third.seq > max(m.seq for m in second.history(s.id, limit=2)[:1])


def test_export_and_import_carry_conversations(memory_factory, tmp_path):
    source = memory_factory()
    s = source.session_start()
    talk(source, s.id, "first words", "a reply", user_id="u")
    source.summary_save(s.id, "they spoke", message_count=2, last_seq=source.history(s.id)[-1].seq)
    source.profile_save("u", {"k": {"value": "v", "source_message_ids": []}})
    cp = source.checkpoint_save(s.id, {"step": 1})
    counts = source.export(tmp_path / "chat.jsonl")
    assert counts == {"session": 1, "task": 0, "entry": 0, "message": 2, "summary": 1, "profile": 1, "checkpoint": 1}
    target = memory_factory()
    target.store("pre-existing", "x")
    assert target.import_(tmp_path / "chat.jsonl") == counts
    assert target.import_(tmp_path / "chat.jsonl") == counts  # idempotent
    history = target.history(s.id)
    assert [m.content for m in history] == ["first words", "a reply"]
    assert target.summary(s.id).last_seq == history[-1].seq
    assert target.profile("u").traits["k"].value == "v"
    assert target.checkpoint_resume(cp.id) == {"step": 1}
    assert target.search_messages("words").count == 1
