"""`engram session ...` by user and agent, metadata get/update, delete (issue 16)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import engram
from engram.cli import cli


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with engram.Memory(url) as memory:
        memory.add_message("a", "user", "hi", user_id="ana", agent_id="helper")
        memory.add_message("b", "user", "hi", user_id="bo")
        memory.session_update("a", {"topic": "trip"})
        memory.checkpoint_save("a", {"step": 1})
    return url


def run(db: str, *args: str):
    return CliRunner().invoke(cli, ["--db", db, *args], env={"ENGRAM_EMBEDDER": "none"})


def test_session_list_by_user_agent_and_sort(db) -> None:
    result = run(db, "session", "list", "--user-id", "ana", "--json")
    assert result.exit_code == 0, result.output
    assert [(s["id"], s["user_id"], s["agent_id"]) for s in json.loads(result.output)] == [("a", "ana", "helper")]
    oldest = json.loads(run(db, "session", "list", "--sort", "oldest", "--json").output)
    assert [s["id"] for s in oldest] == ["a", "b"]
    assert run(db, "session", "list", "--sort", "sideways").exit_code == 2
    started = json.loads(run(db, "session", "start", "--user-id", "cy", "--agent-id", "x", "--json").output)
    assert (started["user_id"], started["agent_id"]) == ("cy", "x")


def test_session_metadata_get_and_set(db) -> None:
    assert json.loads(run(db, "session", "metadata", "a").output) == {"topic": "trip"}
    result = run(db, "session", "metadata", "a", "--set", '{"topic": null, "lang": "no"}', "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["metadata"] == {"lang": "no"}
    result = run(db, "session", "metadata", "a", "--set", '{"x": 1}', "--replace", "--json")
    assert json.loads(result.output)["metadata"] == {"x": 1}
    assert run(db, "session", "metadata", "missing").exit_code == 1
    assert run(db, "session", "metadata", "a", "--set", "[1]").exit_code == 2


def test_session_delete(db) -> None:
    result = run(db, "session", "delete", "a", "--yes")
    assert result.exit_code == 0, result.output
    with engram.Memory(db) as memory:
        assert memory.session_get("a") is None and memory.stats().checkpoints == 0
        assert memory.session_get("b") is not None
    missing = run(db, "session", "delete", "a", "--yes")
    assert missing.exit_code == 1 and "session a does not exist" in missing.output


def test_run_commands(db) -> None:
    run_id = run(db, "run", "start", "a", "--run-id", "r1").output.strip()
    assert run_id == "r1"
    assert run(db, "run", "pause", "r1", '{"step": 1}').exit_code == 0
    listed = json.loads(run(db, "run", "list", "--resumable", "--json").output)
    assert [r["id"] for r in listed] == ["r1"]
    resumed = run(db, "run", "resume", "r1")
    assert resumed.exit_code == 0 and json.loads(resumed.output)["state"] == {"step": 1}
    again = run(db, "run", "resume", "r1")
    assert again.exit_code == 1 and "r1" in again.output
    finished = run(db, "run", "finish", "r1", "--status", "cancelled", "--state", '{"step": 2}', "--json")
    assert json.loads(finished.output)["status"] == "cancelled"
    assert run(db, "run", "finish", "r1", "--status", "completed", "--state", "{}").exit_code == 2
