"""``copy_store`` and ``engram copy``: everything moves between any two backends, twice is once."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

import engram
from engram.cli import cli
from engram.copy import copy_store, verify
from engram.stores.base import Counts


def populate(memory: engram.Memory) -> None:
    memory.store("colour", "The user likes teal", namespace="user:1", metadata={"src": "chat", "n": 1})
    memory.store("pet", "A cat named Ada 🐈 NUL\x00", namespace="user:1", metadata={"nested": {"ok": True}},
                 context="Ada's page, NUL\x00")  # the context is copied too (issue 15)
    memory.store("hour", "valid for an hour", ttl=3600)
    memory.store("gone", "already expired", namespace="tmp", ttl=0.05)
    memory.store_many(
        [{"key": f"bulk-{i}", "content": f"bulk entry {i}", "metadata": {"i": i}} for i in range(25)], context_window=1
    )
    active = memory.session_start({"user": "1"})
    ended = memory.session_start()
    memory.session_end(ended.id)
    t1 = memory.task_create("researcher", {"q": "why?"}, session_id=active.id)
    memory.task_update(t1.id, "completed", output={"a": 42})
    memory.task_create("loner", None)
    chat(memory, active.id)
    time.sleep(0.1)  # let "gone" expire: expired entries are copied too


def chat(memory: engram.Memory, session_id: str) -> None:
    """5 messages, a summary, 2 profiles and 2 checkpoints (one resumed) in ``session_id``."""
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    memory.add_message(session_id, "user", "What is the weather in Oslo? 🌧", user_id="u1", metadata={"lang": "en"})
    memory.add_message(session_id, "assistant", None, tool_calls=[call], agent_id="bot")
    memory.add_message(
        session_id, "tool", '{"temp": -3}', tool_call_id="c1", attachments=[{"uri": "blob://x", "name": "map.png"}]
    )
    last = memory.add_messages(
        [{"role": "assistant", "content": "Cold: -3 degrees."}, {"role": "user", "content": "thanks", "user_id": "u1"}],
        session_id=session_id,
    )[-1]
    memory.summary_save(session_id, "Asked about Oslo weather.", message_count=5, last_seq=last.seq)
    memory.profile_save("u1", {"city": {"value": "Oslo", "source_message_ids": [last.id]}})
    memory.profile_save("u2", {"pet": {"value": {"kind": "cat"}, "source_message_ids": []}})
    memory.checkpoint_save(session_id, {"step": 1, "pending": ["approve"]}, run_id="r1")
    done = memory.checkpoint_save(session_id, {"step": 2})
    memory.checkpoint_resume(done.id)
    memory.run_start(session_id, run_id="r1", user_id="u1", agent_id="planner")  # runs are copied too (issue 16)


def conversation(memory: engram.Memory) -> dict[str, object]:
    """Every conversation record of ``memory``, comparable across backends."""
    sessions = sorted(s.id for s in memory.sessions(limit=10_000))
    return {
        "history": {s: [m.model_dump() for m in memory.history(s)] for s in sessions},
        "summaries": {s: (x.model_dump() if (x := memory.summary(s)) else None) for s in sessions},
        "profiles": {u: memory.profile(u).model_dump() for u in ("u1", "u2") if memory.profile(u)},
        "checkpoints": {s: [c.model_dump() for c in memory.checkpoints(s)] for s in sessions},
        "runs": [r.model_dump() for r in memory.runs(limit=10_000)],
        "found": sorted(h.message.id for h in memory.search_messages("oslo OR cold OR thanks", limit=50).results),
    }


def everything(memory: engram.Memory) -> dict[str, object]:
    stats = memory.stats()
    return {
        "entries": sorted((e.model_dump() for e in memory.list(limit=10_000)), key=lambda d: (d["namespace"], d["key"])),
        "sessions": sorted((s.model_dump() for s in memory.sessions(limit=10_000)), key=lambda d: d["id"]),
        "tasks": sorted((t.model_dump() for t in memory.tasks(limit=10_000)), key=lambda d: d["id"]),
        "counts": (stats.entries, stats.namespaces, stats.sessions, stats.tasks, stats.expired_entries),
        "chat_counts": (stats.messages, stats.summaries, stats.profiles, stats.checkpoints),
        "search": sorted((h.entry.key, h.entry.namespace) for h in memory.search("bulk OR teal", limit=50).results),
        **conversation(memory),
    }


COUNTS = {"session": 2, "task": 2, "entry": 29, "message": 5, "summary": 1, "profile": 2, "checkpoint": 2, "run": 1}


PAIRS = [
    ("sqlite", "postgres"),
    ("postgres", "redis"),
    ("redis", "json"),
    ("json", "sqlite"),
    ("memory", "postgres"),
    ("sqlite", "redis"),
]


@pytest.mark.parametrize("src_backend, dst_backend", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_copy_moves_everything_and_is_idempotent(url_of, src_backend, dst_backend):
    with engram.Memory(url_of(src_backend, "src")) as src, engram.Memory(url_of(dst_backend, "dst")) as dst:
        populate(src)
        seen: list[int] = []
        counts = copy_store(src, dst, batch_size=7, progress=seen.append)
        assert counts == COUNTS
        assert sum(seen) == sum(COUNTS.values())
        assert everything(dst) == everything(src)
        for ns, key in [("user:1", "colour"), ("user:1", "pet"), ("default", "bulk-3")]:
            assert dst.get(key, namespace=ns) == src.get(key, namespace=ns)  # ids and timestamps kept
        assert (dst.get("pet", namespace="user:1").context, dst.get("bulk-3").context) == ("Ada's page, NUL\x00", "bulk entry 2")

        again = copy_store(src, dst)
        assert again == counts
        assert everything(dst) == everything(src)


def test_copy_into_a_store_that_already_holds_other_records(url_of):
    with engram.Memory(url_of("sqlite", "src")) as src, engram.Memory(url_of("json", "dst")) as dst:
        populate(src)
        dst.store("mine", "already here")
        copy_store(src, dst)
        assert dst.get("mine").content == "already here"
        assert dst.stats().entries == src.stats().entries + 1


def test_copy_refuses_the_same_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with engram.Memory(url) as a, engram.Memory(url) as b:
        with pytest.raises(engram.ConfigError, match="same store"):
            copy_store(a, b)
    with engram.Memory("memory://") as m, pytest.raises(engram.ConfigError):
        copy_store(m, m, batch_size=0)


def test_verify_reports_every_kind_that_does_not_add_up():
    empty = Counts(0, 0, 0, 0, 0)
    verify(empty, Counts(10, 1, 2, 3, 1), {"session": 2, "task": 3, "entry": 11}, "x")
    with pytest.raises(engram.BackendError) as info:
        verify(empty, Counts(9, 1, 2, 2, 1), {"session": 2, "task": 3, "entry": 11}, "dst://")
    message = str(info.value)
    assert "dst://" in message and "task: copied 3, the destination holds 2" in message and "entry" in message
    # Into a non-empty destination: between what was copied and old + copied.
    had = Counts(5, 1, 1, 0, 0)
    verify(had, Counts(12, 1, 3, 3, 0), {"session": 2, "task": 3, "entry": 11}, "x")
    with pytest.raises(engram.BackendError):
        verify(had, Counts(17, 1, 3, 3, 0), {"session": 2, "task": 3, "entry": 11}, "x")


def test_cli_copy(tmp_path):
    src, dst = f"sqlite:///{tmp_path / 'src.db'}", f"json:///{tmp_path / 'dst'}"
    (tmp_path / "dst").mkdir()
    with engram.Memory(src) as memory:
        populate(memory)
    runner = CliRunner()
    result = runner.invoke(cli, ["copy", src, dst])
    assert result.exit_code == 0, result.output
    assert (
        "copied and verified 2 sessions, 2 tasks, 29 entries, 5 messages, 1 summary, 2 profiles, 2 checkpoints"
        in result.output
    )
    result = runner.invoke(cli, ["copy", src, dst, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{"):]) == COUNTS
    with engram.Memory(src) as a, engram.Memory(dst) as b:
        assert everything(a) == everything(b)
    result = runner.invoke(cli, ["copy", src, src])
    assert result.exit_code == 2 and "same store" in result.output


def test_copy_chain_sqlite_postgres_redis_json_and_a_rerun_changes_nothing(url_of):
    chain = [url_of("sqlite", "a"), url_of("postgres", "b"), url_of("redis", "c"), url_of("json", "d")]
    stores = [engram.Memory(url) for url in chain]
    try:
        populate(stores[0])
        original = everything(stores[0])
        for src, dst in zip(stores, stores[1:]):
            assert copy_store(src, dst, batch_size=3) == COUNTS
            assert everything(dst) == original  # seq kept too: each destination started empty
        for src, dst in zip(stores, stores[1:]):
            assert copy_store(src, dst, batch_size=3) == COUNTS  # read and written again ...
            assert everything(dst) == original  # ... and nothing changed, nothing doubled
        # A checkpoint resumed in the source since the last copy is brought up to date.
        paused = stores[0].checkpoints(stores[0].sessions(status="active")[0].id, status="paused")[0]
        stores[0].checkpoint_resume(paused.id)
        copy_store(stores[0], stores[1])
        assert stores[1].checkpoint_get(paused.id) == stores[0].checkpoint_get(paused.id)
    finally:
        for m in stores:
            m.close()


@pytest.mark.parametrize("dst_backend", ["sqlite", "memory", "json", "postgres", "redis"])
def test_copy_into_a_store_with_its_own_messages_renumbers_and_keeps_order(url_of, dst_backend):
    with engram.Memory(url_of("sqlite", "src")) as src, engram.Memory(url_of(dst_backend, "dst")) as dst:
        populate(src)
        own = dst.session_start()
        for i in range(8):  # seq 1..8 there: the source's numbers are taken
            dst.add_message(own.id, "user", f"own message {i}")
        copy_store(src, dst)
        active = src.sessions(status="active")[0].id
        theirs, ours = src.history(active), dst.history(active)
        assert [m.id for m in ours] == [m.id for m in theirs]  # same messages, same order
        assert [m.model_dump(exclude={"seq"}) for m in ours] == [m.model_dump(exclude={"seq"}) for m in theirs]
        assert min(m.seq for m in ours) > 8
        assert dst.summary(active).last_seq == ours[-1].seq  # re-pointed at the same message
        assert [m.content for m in dst.history(own.id)] == [f"own message {i}" for i in range(8)]
        stats = dst.stats()
        assert (stats.messages, stats.summaries, stats.profiles, stats.checkpoints) == (13, 1, 2, 2)
        snapshot = (everything(dst), dst.history(own.id))
        copy_store(src, dst)
        assert (everything(dst), dst.history(own.id)) == snapshot
        later = dst.add_message(active, "user", "after the copy")
        assert later.seq > ours[-1].seq


def test_stats_count_conversation_records(url_of):
    with engram.Memory(url_of("sqlite", "s")) as memory:
        populate(memory)
        stats = memory.stats()
        assert (stats.messages, stats.summaries, stats.profiles, stats.checkpoints) == (5, 1, 2, 2)
    result = CliRunner().invoke(cli, ["--db", url_of("sqlite", "s"), "stats", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout[result.stdout.index("{"):])
    assert {k: shown[k] for k in ("messages", "summaries", "profiles", "checkpoints")} == {
        "messages": 5, "summaries": 1, "profiles": 2, "checkpoints": 2,
    }  # fmt: skip
