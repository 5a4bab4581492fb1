"""Redis conversation records: the documented keys, atomic seq and resume, the
message search cache across processes, and prune leaving no stray keys.

Shared behaviour is in tests/conformance/test_conversation.py; these need a real
server (``redis_url`` skips without one, or fails on CI).
"""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

import engram
from engram.stores.redis.layout import Keys

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def _prefix(url: str) -> str:
    return parse_qs(urlsplit(url).query)["prefix"][0]


@pytest.fixture
def raw(redis_url):
    with redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True) as client:
        yield client


def _keys(raw: redis.Redis, prefix: str) -> set[str]:
    return set(raw.scan_iter(match=f"{prefix}:*", count=1000))


def test_conversation_key_layout_is_as_documented(redis_url, raw):
    keys = Keys(_prefix(redis_url))
    with engram.Memory(redis_url) as memory:
        s = memory.session_start()
        plain = memory.add_message(s.id, "user", "hello", user_id="u1")
        call = memory.add_message(s.id, "assistant", None, tool_calls=[CALL], agent_id="bot")
        memory.summary_save(s.id, "greeting", message_count=2, last_seq=call.seq)
        memory.profile_save("u1", {"city": {"value": "Oslo", "source_message_ids": [plain.id]}})
        cp = memory.checkpoint_save(s.id, {"step": 1}, run_id="r1")

    h = raw.hgetall(keys.message(plain.id))
    assert h == {
        "id": plain.id, "session_id": s.id, "seq": str(plain.seq), "role": "user", "content": "hello",
        "metadata": "{}", "created_at": engram._time.to_iso(plain.created_at), "user_id": "u1",
    }  # fmt: skip
    h = raw.hgetall(keys.message(call.id))
    assert json.loads(h["tool_calls"]) == [CALL] and h["agent_id"] == "bot" and "user_id" not in h
    assert raw.zrange(keys.messages, 0, -1, withscores=True) == [(plain.id, plain.seq), (call.id, call.seq)]
    assert raw.zrange(keys.session_messages(s.id), 0, -1) == [plain.id, call.id]
    assert raw.zcard(keys.messages_created) == 2
    assert int(raw.get(keys.messages_seq)) == call.seq
    assert raw.hgetall(keys.summary(s.id))["last_seq"] == str(call.seq)
    assert raw.smembers(keys.summaries) == {s.id}
    assert json.loads(raw.hget(keys.profile("u1"), "traits"))["city"]["value"] == "Oslo"
    assert raw.smembers(keys.profiles) == {"u1"}
    h = raw.hgetall(keys.checkpoint(cp.id))
    assert (h["status"], h["run_id"], json.loads(h["state"])) == ("paused", "r1", {"step": 1})
    assert "resumed_at" not in h
    assert raw.zrange(keys.checkpoints, 0, -1) == [cp.id] == raw.zrange(keys.session_checkpoints(s.id), 0, -1)


def test_concurrent_appends_get_unique_growing_seq(redis_url):
    stores = [engram.Memory(redis_url) for _ in range(4)]
    try:
        s = stores[0].session_start()
        seqs: list[list[int]] = [[] for _ in stores]

        def talk(i: int) -> None:
            for n in range(25):
                seqs[i].append(stores[i].add_message(s.id, "user", f"writer {i} says {n}").seq)

        threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        every = [q for each in seqs for q in each]
        assert len(set(every)) == 100
        assert all(each == sorted(each) for each in seqs)  # each writer's own messages in order
        history = stores[1].history(s.id)
        assert [m.seq for m in history] == sorted(every)
    finally:
        for m in stores:
            m.close()


def test_message_search_sees_writes_and_deletes_of_other_processes(redis_url):
    with engram.Memory(redis_url) as reader, engram.Memory(redis_url) as writer:
        a, b = writer.session_start(), writer.session_start()
        writer.add_message(a.id, "user", "the blue whale")
        assert reader.search_messages("whale").count == 1
        writer.add_messages([{"role": "user", "content": f"whale number {i}"} for i in range(3)], session_id=b.id)
        assert reader.search_messages("whale").count == 4  # appended: read by seq range
        writer.delete_history(b.id)
        assert [h.message.content for h in reader.search_messages("whale").results] == ["the blue whale"]
        writer.add_message(b.id, "user", "another whale")
        writer.prune(keep_last_per_session=0, session_id=a.id)
        assert [h.message.content for h in reader.search_messages("whale").results] == ["another whale"]


def test_message_search_scores_like_memory(redis_url):
    texts = ["I went running in the hills", "Great! Running is healthy. Running daily?", "No, I swim", "run run run"]
    results = []
    for url in (redis_url, "memory://"):
        with engram.Memory(url) as memory:
            s = memory.session_start()
            for t in texts:
                memory.add_message(s.id, "user", t)
            results.append([(h.message.content, round(h.score, 9)) for h in memory.search_messages("run OR swim").results])
    assert results[0] == results[1]


def test_concurrent_resumes_across_processes_have_one_winner(redis_url):
    stores = [engram.Memory(redis_url) for _ in range(6)]
    try:
        s = stores[0].session_start()
        cp = stores[0].checkpoint_save(s.id, {"a": 1})
        outcomes: list[str] = []
        barrier = threading.Barrier(len(stores))

        def resume(memory: engram.Memory) -> None:
            barrier.wait()
            try:
                memory.checkpoint_resume(cp.id)
                outcomes.append("won")
            except engram.Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=resume, args=(m,)) for m in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
    finally:
        for m in stores:
            m.close()


def test_prune_and_delete_history_leave_no_stray_keys(redis_url, raw, monkeypatch):
    prefix = _prefix(redis_url)
    with engram.Memory(redis_url) as memory:
        before = _keys(raw, prefix)
        s = memory.session_start()
        memory.add_messages([{"role": "user", "content": f"m{i}"} for i in range(5)], session_id=s.id)
        memory.summary_save(s.id, "five", message_count=5)
        memory.checkpoint_save(s.id, {})
        memory.task_create("agent", None, session_id=s.id)
        assert memory.delete_history(s.id) == 5
        left = _keys(raw, prefix) - before
        assert not any(":msg:" in k or ":msgs:session:" in k or ":summary:" in k for k in left), left

        memory.add_message(s.id, "user", "again")
        memory.session_end(s.id)
        future = engram._time.utcnow() + __import__("datetime").timedelta(days=2)
        monkeypatch.setattr("engram.memory.retention.utcnow", lambda: future)
        report = memory.prune(older_than_days=1)
        assert (report.sessions, report.messages, report.checkpoints, report.tasks) == (1, 1, 1, 1)
        assert memory.stats().model_dump(include={"sessions", "tasks", "messages", "summaries", "checkpoints"}) == {
            "sessions": 0, "tasks": 0, "messages": 0, "summaries": 0, "checkpoints": 0,
        }  # fmt: skip
        stray = {k for k in _keys(raw, prefix) if raw.type(k) in ("hash", "zset", "set")}
        assert stray == {f"{prefix}:msgs:removals"}, stray  # and counters: nothing else remains


def test_search_cache_catches_up_from_the_removal_log_and_falls_back_past_its_floor(redis_url, monkeypatch):
    import engram.stores.redis.chat as chat

    with engram.Memory(redis_url) as reader, engram.Memory(redis_url) as writer:
        sessions = [writer.session_start().id for _ in range(4)]
        for s in sessions:
            writer.add_messages([{"role": "user", "content": f"tea {i}"} for i in range(3)], session_id=s)
        assert reader.search_messages("tea", limit=50).count == 12
        reads: list[str] = []
        real = reader.backend._client.zrange
        monkeypatch.setattr(reader.backend._client, "zrange", lambda *a, **kw: reads.append(a[0]) or real(*a, **kw))
        writer.delete_history(sessions[0])
        assert reader.search_messages("tea", limit=50).count == 9
        assert reads == []  # caught up from the log, without re-reading the id list
        keys = reader.backend.keys
        writer.backend._client.set(keys.messages_removals_floor, 10**9)  # as if the log were trimmed past us
        writer.delete_history(sessions[1])
        assert reader.search_messages("tea", limit=50).count == 6
        assert reads == [keys.messages]  # fell back to the whole list
        assert chat.lua.REMOVAL_LOG >= 1000


def test_put_messages_is_one_script_and_refuses_unknown_sessions(redis_url):
    with engram.Memory(redis_url) as memory:
        s = memory.session_start()
        m = memory.add_message(s.id, "user", "x")
        ghost = m.model_copy(update={"id": "ghost", "session_id": "no-such-session", "seq": 99})
        fresh = m.model_copy(update={"id": "fresh", "seq": 50})
        with pytest.raises(engram.NotFound, match="no-such-session"):
            memory.backend.put_messages([fresh, ghost])
        assert memory.message_get("fresh") is None  # nothing stored
        stored = memory.backend.put_messages([m, fresh])
        assert stored[0] == m and stored[1].seq == 50
        assert memory.add_message(s.id, "user", "y").seq == 51  # the counter moved past it


def test_the_removal_log_is_trimmed_by_whole_deletions(redis_url, raw):
    from engram.stores.redis import chat_lua as lua

    assert str(lua.REMOVAL_LOG) in lua.DELETE_MESSAGES
    with engram.Memory(redis_url) as memory:
        store, keys = memory.backend, memory.backend.keys
        small = store._client.register_script(lua.DELETE_MESSAGES.replace(str(lua.REMOVAL_LOG), "3"))
        s = memory.session_start()
        sent = memory.add_messages([{"role": "user", "content": f"m{i}"} for i in range(6)], session_id=s.id)
        ids, seqs = [m.id for m in sent], [str(m.seq) for m in sent]
        run = lambda *chunk: small(  # noqa: E731
            keys=[keys.messages, keys.messages_created, keys.messages_removed, keys.messages_removals,
                  keys.messages_removals_floor],
            args=[keys.prefix, *chunk],
        )  # fmt: skip
        assert run(ids[0], ids[1]) == 2 and run(ids[2], ids[3]) == 2
        # 4 logged > 3 kept: the whole first deletion (removal counter 1) goes, and the floor says so.
        assert raw.zrange(keys.messages_removals, 0, -1, withscores=True) == [(seqs[2], 2.0), (seqs[3], 2.0)]
        assert raw.get(keys.messages_removals_floor) == "1"
        assert run(ids[4], ids[5], "no-such-message") == 2
        assert raw.get(keys.messages_removals_floor) == "2"
        assert [m.content for m in memory.history(s.id)] == []
