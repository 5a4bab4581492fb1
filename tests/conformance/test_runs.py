"""Runs of agents inside sessions (issue 16), on every backend: status, latest checkpoint,
resumable runs, resume once (a second resume is Conflict, from another process too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import engram

pytestmark = pytest.mark.requires("conversation")


def test_a_run_moves_through_its_statuses(memory):
    run = memory.run_start("chat-1", user_id="ana", agent_id="planner")
    assert (run.status, run.session_id, run.checkpoint_id) == ("running", "chat-1", None)
    assert memory.session_get("chat-1").user_id == "ana"  # a run starts its session like a message does
    paused = memory.run_pause(run.id, {"step": 2, "waiting_for": "approval"})
    assert paused.status == "paused" and paused.checkpoint_id is not None
    checkpoint = memory.checkpoint_get(paused.checkpoint_id)
    assert (checkpoint.run_id, checkpoint.state["step"]) == (run.id, 2)
    assert memory.run_get(run.id) == paused

    resumed = memory.run_resume(run.id)
    assert resumed.run.status == "running" and resumed.state == {"step": 2, "waiting_for": "approval"}
    assert memory.checkpoint_get(paused.checkpoint_id).status == "resumed"
    with pytest.raises(engram.Conflict, match="resumed already"):
        memory.run_resume(run.id)  # a resume works once

    failed = memory.run_fail(run.id, {"step": 3})
    assert failed.status == "error" and failed.checkpoint_id != paused.checkpoint_id
    assert memory.run_resume(run.id).state == {"step": 3}
    assert memory.run_complete(run.id).status == "completed"
    for move in (memory.run_resume, memory.run_complete):
        with pytest.raises(engram.Conflict):
            move(run.id)
    with pytest.raises(engram.Conflict):
        memory.run_pause(run.id, {"x": 1})
    assert len(memory.checkpoints("chat-1")) == 2  # a refused pause leaves no checkpoint


def test_resumable_runs_by_session_and_user(memory):
    a = memory.run_start("s1", user_id="ana")
    b = memory.run_start("s1", user_id="ana")
    c = memory.run_start("s2", user_id="bo")
    d = memory.run_start("s2", user_id="bo")
    memory.run_pause(a.id, {"a": 1})
    time.sleep(0.002)
    memory.run_fail(c.id)
    time.sleep(0.002)
    memory.run_cancel(d.id)
    assert [r.id for r in memory.resumable_runs()] == [d.id, c.id, a.id]  # most recently updated first
    assert [r.id for r in memory.resumable_runs(session_id="s1")] == [a.id]
    assert [r.id for r in memory.resumable_runs(user_id="bo")] == [d.id, c.id]
    assert [r.id for r in memory.runs(status="running")] == [b.id]
    assert [r.status for r in memory.runs(session_id="s2")] == ["cancelled", "error"]
    memory.run_resume(d.id)
    assert [r.id for r in memory.resumable_runs(user_id="bo")] == [c.id]
    assert memory.resumable_runs(session_id="nowhere") == []


def test_bad_run_calls(memory):
    with pytest.raises(engram.NotFound):
        memory.run_resume("no-such-run")
    with pytest.raises(engram.NotFound):
        memory.run_pause("no-such-run", {})
    run = memory.run_start("s", run_id="run-1")
    with pytest.raises(engram.Conflict):
        memory.run_start("s", run_id="run-1")
    with pytest.raises(engram.InvalidInput):
        memory.run_pause(run.id, {"not": {1, 2}})
    assert memory.run_get(run.id).status == "running"  # unchanged by the bad pause
    with pytest.raises(engram.InvalidInput):
        memory.runs(status="sleeping")
    with pytest.raises(engram.InvalidInput):
        memory.run_start("bad id")
    assert memory.run_get("never") is None


def test_deleting_a_session_deletes_its_runs(memory):
    run = memory.run_start("doomed")
    memory.run_pause(run.id, {"x": 1})
    other = memory.run_start("kept")
    memory.session_delete("doomed")
    assert memory.run_get(run.id) is None
    assert memory.resumable_runs() == []
    assert memory.run_get(other.id) is not None


async def test_async_runs(async_memory):
    run = await async_memory.run_start("s")
    await async_memory.run_pause(run.id, {"k": "v"})
    assert [r.id for r in await async_memory.resumable_runs()] == [run.id]
    assert (await async_memory.run_resume(run.id)).state == {"k": "v"}
    with pytest.raises(engram.Conflict):
        await async_memory.run_resume(run.id)


# -- across processes --------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, sys, time
    import engram
    url, action, run_id, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as memory:
        if action == "pause":
            run = memory.run_start("shared", run_id=run_id, user_id="ana")
            memory.run_pause(run.id, {"waiting_for": "approval", "pid": __import__("os").getpid()})
            print(json.dumps({"paused": run.id}))
            sys.exit(0)
        time.sleep(max(0.0, start_at - time.time()))  # all resume at the same moment
        try:
            resumed = memory.run_resume(run_id)
            print(json.dumps({"won": True, "state": resumed.state}))
        except engram.Conflict as exc:
            print(json.dumps({"won": False, "error": str(exc)}))
    """
)


def _worker(url: str, action: str, run_id: str, start_at: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "ENGRAM_EMBEDDER": "none"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, action, run_id, str(start_at)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.requires("multiprocess")
def test_a_run_paused_in_one_process_is_resumed_once_in_others(memory_factory):
    url = memory_factory.url()
    assert _result(_worker(url, "pause", "run-x")) == {"paused": "run-x"}
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as here:
        assert [r.id for r in here.resumable_runs(user_id="ana")] == ["run-x"]
    start_at = time.time() + 3.0  # after every interpreter has started and opened the store
    racers = [_worker(url, "resume", "run-x", start_at) for _ in range(4)]
    results = [_result(p) for p in racers]
    winners = [r for r in results if r["won"]]
    assert len(winners) == 1, results
    assert winners[0]["state"]["waiting_for"] == "approval"
    assert all("is running" in r["error"] for r in results if not r["won"])
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as here:
        assert here.run_get("run-x").status == "running" and here.resumable_runs() == []


def test_runs_travel_in_export_import_and_copy(memory_factory, tmp_path):
    from engram.copy import copy_store

    src = memory_factory()
    paused = src.run_start("s", user_id="ana")
    src.run_pause(paused.id, {"step": 1})
    done = src.run_start("s")
    src.run_complete(done.id)
    assert src.stats().runs == 2
    src.export(tmp_path / "dump.jsonl")
    imported = memory_factory()
    assert imported.import_(tmp_path / "dump.jsonl")["run"] == 2
    imported.import_(tmp_path / "dump.jsonl")  # again: changes nothing
    assert {r.id: r for r in imported.runs()} == {r.id: r for r in src.runs()}
    assert imported.run_resume(paused.id).state == {"step": 1}

    copied = memory_factory(f"sqlite:///{tmp_path / 'copy.db'}")  # another store whatever the backend
    copy_store(src, copied)
    assert copied.run_get(paused.id) == src.run_get(paused.id)
    src.run_resume(paused.id)
    copy_store(src, copied)  # moved in the source since: the copy follows
    assert copied.run_get(paused.id).status == "running"
