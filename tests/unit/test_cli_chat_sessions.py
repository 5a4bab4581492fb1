"""`engram chat ...`: adding to a new session id starts it; reading an unknown session exits 1;
`engram store` without --metadata keeps the entry's metadata."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import engram
from engram.cli import cli


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'c.db'}"


def run(db: str, *args: str):
    return CliRunner().invoke(cli, ["--db", db, *args])


def test_chat_add_to_a_new_session_id_starts_it(db) -> None:
    result = run(db, "chat", "add", "thread-1", "user", "hello", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["session_id"] == "thread-1"
    result = run(db, "chat", "history", "thread-1", "--json")
    assert [m["content"] for m in json.loads(result.output)] == ["hello"]
    with engram.Memory(db) as memory:
        assert memory.session_get("thread-1").status == "active"


@pytest.mark.parametrize("command", [["history"], ["summary"], ["delete", "--yes"]])
def test_reading_an_unknown_session_exits_1(db, command) -> None:
    result = run(db, "chat", command[0], "never-seen", *command[1:])
    assert result.exit_code == 1
    assert "session never-seen does not exist" in result.output


def test_checkpoint_list_of_an_unknown_session_exits_1(db) -> None:
    result = run(db, "checkpoint", "list", "never-seen")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_a_bad_new_session_id_is_a_usage_error_that_says_what_to_use(db) -> None:
    result = run(db, "chat", "add", "a b", "user", "hello")
    assert result.exit_code == 2  # InvalidInput's exit code
    assert "letters, digits" in result.output
    with engram.Memory(db) as memory:
        assert memory.sessions() == []


def test_store_without_metadata_keeps_it_and_empty_metadata_clears_it(db) -> None:
    assert run(db, "store", "k", "one", "--metadata", '{"topic": "food"}').exit_code == 0
    assert run(db, "store", "k", "two").exit_code == 0
    with engram.Memory(db) as memory:
        assert (memory.get("k").content, memory.get("k").metadata) == ("two", {"topic": "food"})
    assert run(db, "store", "k", "three", "--metadata", "{}").exit_code == 0
    with engram.Memory(db) as memory:
        assert memory.get("k").metadata == {}
