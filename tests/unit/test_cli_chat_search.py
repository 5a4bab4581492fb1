"""`engram chat search --mode/--threshold` passes through to Memory.search_messages."""

from __future__ import annotations

import json

from click.testing import CliRunner

import engram
from engram.cli import cli


def test_chat_search_modes(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with engram.Memory(settings=engram.load_settings(database_url=url)) as memory:
        s = memory.session_start().id
        memory.add_message(s, "user", "the cat sleeps", embedding=[1.0, 0.0, 0.0])
        memory.add_message(s, "user", "stock prices fell", embedding=[0.0, 1.0, 0.0])
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", url, "chat", "search", "cat", "--mode", "fts", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["count"] == 1 and found["results"][0]["match_type"] == "fts"
    # No embedder configured (tests run with ENGRAM_EMBEDDER=none): search by meaning says so.
    result = runner.invoke(cli, ["--db", url, "chat", "search", "cat", "--mode", "vector", "--threshold", "0.5"])
    assert result.exit_code != 0 and "embedder" in result.output
    result = runner.invoke(cli, ["--db", url, "chat", "search", "cat", "--mode", "nearest"])
    assert result.exit_code != 0
