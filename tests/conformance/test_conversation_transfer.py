"""Conversation records moving between stores, on every backend: the idempotent
``Store.put_messages`` primitive (used by ``engram copy`` and import), export /
import that changes nothing the second time, and ``stats()`` counting them.

Backends without the ``conversation`` capability skip this whole module.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

import engram

pytestmark = pytest.mark.requires("conversation")

CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def message(session_id: str, ident: str, seq: int, content: str = "hello", **fields) -> engram.Message:
    return engram.Message(
        id=ident,
        session_id=session_id,
        role=fields.pop("role", "user"),
        content=content,
        created_at=fields.pop("created_at", datetime(2024, 5, 1, 12, 0, seq % 60, 123456, tzinfo=timezone.utc)),
        seq=seq,
        **fields,
    )


def fill(memory: engram.Memory) -> str:
    """One session with 4 messages (tool call, attachment, unicode), a summary, a profile, 2 checkpoints."""
    s = memory.session_start({"topic": "weather"})
    memory.add_message(s.id, "user", "Weather in Oslo? 🌧 NUL\x00", user_id="u1", metadata={"n": [1, 2.5, None]})
    memory.add_message(s.id, "assistant", None, tool_calls=[CALL], agent_id="bot")
    memory.add_message(s.id, "tool", "-3", tool_call_id="c1", attachments=[{"uri": "blob://x", "size_bytes": 3}])
    last = memory.add_message(s.id, "assistant", "Cold.", user_id="u1")
    memory.summary_save(s.id, "Oslo is cold.", message_count=4, last_seq=last.seq)
    memory.profile_save("u1", {"city": {"value": "Oslo", "source_message_ids": [last.id]}})
    memory.checkpoint_save(s.id, {"step": 1}, run_id="r1")
    done = memory.checkpoint_save(s.id, {"step": 2})
    memory.checkpoint_resume(done.id)
    return s.id


def snapshot(memory: engram.Memory) -> dict[str, object]:
    sessions = sorted(s.id for s in memory.sessions(limit=1000))
    stats = memory.stats()
    return {
        "history": {s: memory.history(s) for s in sessions},
        "summaries": {s: memory.summary(s) for s in sessions},
        "profile": memory.profile("u1"),
        "checkpoints": {s: memory.checkpoints(s) for s in sessions},
        "stats": (stats.sessions, stats.messages, stats.summaries, stats.profiles, stats.checkpoints),
        "found": [(h.message.id, round(h.score, 6)) for h in memory.search_messages("oslo OR cold").results],
    }


# -- put_messages ------------------------------------------------------------------


def test_put_messages_into_an_empty_store_keeps_seq_and_every_field(memory):
    s = memory.session_start()
    sent = [
        message(s.id, "m1", 10, "first", user_id="u", metadata={"k": 1}),
        message(s.id, "m2", 11, "", role="assistant", tool_calls=[CALL], agent_id="bot"),
        message(s.id, "m3", 15, "3", role="tool", tool_call_id="c1", attachments=[engram.Attachment(uri="blob://a")]),
    ]
    stored = memory.backend.put_messages(sent)
    assert stored == sent
    assert memory.history(s.id) == sent  # seq, created_at and every other field as given
    assert memory.add_message(s.id, "user", "next").seq > 15


def test_put_messages_skips_ids_already_stored(memory):
    s = memory.session_start()
    first = memory.backend.put_messages([message(s.id, "m1", 3, "original")])
    again = memory.backend.put_messages([message(s.id, "m1", 3, "changed"), message(s.id, "m2", 4, "new")])
    assert again[0] == first[0]  # as it is stored, not as sent
    assert [m.content for m in memory.history(s.id)] == ["original", "new"]
    assert memory.backend.put_messages([message(s.id, "m1", 3), message(s.id, "m2", 4)]) == memory.history(s.id)
    assert memory.stats().messages == 2
    assert memory.backend.put_messages([]) == []


def test_put_messages_renumbers_after_what_the_store_handed_out_keeping_order(memory):
    s, own = memory.session_start(), memory.session_start()
    mine = [memory.add_message(own.id, "user", f"own {i}") for i in range(5)]
    top = mine[-1].seq
    stored = memory.backend.put_messages([message(s.id, f"m{i}", i + 1, f"copied {i}") for i in range(4)] + [
        message(s.id, "far", top + 100, "far ahead")
    ])  # fmt: skip
    seqs = [m.seq for m in stored]
    assert seqs[:4] == [top + 1, top + 2, top + 3, top + 4]  # taken numbers: the next ones, in order
    assert seqs[4] == top + 100  # a free number is kept
    assert [m.content for m in memory.history(s.id)] == [f"copied {i}" for i in range(4)] + ["far ahead"]
    assert memory.history(own.id) == mine
    assert memory.add_message(s.id, "user", "later").seq > top + 100


def test_put_messages_with_an_unknown_session_stores_nothing(memory):
    s = memory.session_start()
    with pytest.raises(engram.NotFound):
        memory.backend.put_messages([message(s.id, "ok", 1), message("no-such-session", "lost", 2)])
    assert memory.history(s.id) == [] and memory.stats().messages == 0


def test_put_messages_racing_appends_keeps_seq_unique(memory_factory):
    url = memory_factory.url()
    copier = memory_factory(url)
    # Separate stores on one database where the backend has one; memory:// lives in one object.
    writers = [copier] * 3 if url == "memory://" else [memory_factory(url) for _ in range(3)]
    s = copier.session_start()
    errors: list[BaseException] = []

    def append(memory: engram.Memory, n: int) -> None:
        try:
            for i in range(20):
                memory.add_message(s.id, "user", f"append {n}.{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def put() -> None:
        try:
            for b in range(10):
                copier.backend.put_messages([message(s.id, f"copied-{b}-{i}", 1 + i) for i in range(5)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w, n)) for n, w in enumerate(writers)] + [threading.Thread(target=put)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = copier.history(s.id)
    assert len(history) == 110 and len({m.seq for m in history}) == 110
    copied = [m.id for m in history if m.id.startswith("copied-")]
    assert copied == [f"copied-{b}-{i}" for b in range(10) for i in range(5)]  # in the order given


# -- export / import ---------------------------------------------------------------------


def test_reimporting_changes_nothing(memory_factory, tmp_path):
    source = memory_factory()
    fill(source)
    source.export(tmp_path / "chat.jsonl")
    target = memory_factory()
    first = target.import_(tmp_path / "chat.jsonl")
    assert (first["message"], first["summary"], first["profile"], first["checkpoint"]) == (4, 1, 1, 2)
    after_one = snapshot(target)
    assert after_one == snapshot(source)  # into an empty store: seq and all, exactly the source
    assert target.import_(tmp_path / "chat.jsonl") == first
    assert snapshot(target) == after_one


def test_import_into_a_store_with_its_own_messages_repoints_the_summary(memory_factory, tmp_path):
    source = memory_factory()
    sid = fill(source)
    source.export(tmp_path / "chat.jsonl")
    target = memory_factory()
    own = target.session_start()
    for i in range(6):
        target.add_message(own.id, "user", f"own {i}")
    target.import_(tmp_path / "chat.jsonl")
    history = target.history(sid)
    assert [m.id for m in history] == [m.id for m in source.history(sid)]
    assert target.summary(sid).last_seq == history[-1].seq
    once = snapshot(target)
    target.import_(tmp_path / "chat.jsonl")
    assert snapshot(target) == once
    assert target.stats().messages == 10


# -- stats -----------------------------------------------------------------------------------


def test_stats_count_conversation_records(memory):
    stats = memory.stats()
    assert (stats.messages, stats.summaries, stats.profiles, stats.checkpoints) == (0, 0, 0, 0)
    sid = fill(memory)
    stats = memory.stats()
    assert (stats.messages, stats.summaries, stats.profiles, stats.checkpoints) == (4, 1, 1, 2)
    memory.delete_history(sid)
    memory.profile_delete("u1")
    stats = memory.stats()
    assert (stats.messages, stats.summaries, stats.profiles, stats.checkpoints) == (0, 0, 0, 2)
    memory.prune(older_than_days=0)  # checkpoints created before now
    assert memory.stats().checkpoints == 0


def test_created_at_of_put_messages_drives_prune(memory):
    s = memory.session_start()
    old = datetime.now(timezone.utc) - timedelta(days=30)
    memory.backend.put_messages([message(s.id, "old", 1, created_at=old), message(s.id, "new", 2)])
    memory.backend.put_messages([message(s.id, "fresh", 3, created_at=datetime.now(timezone.utc))])
    assert memory.prune(older_than_days=7).messages == 2  # "new" is from 2024 too
    assert [m.id for m in memory.history(s.id)] == ["fresh"]
