"""What the CLI says is true: progress totals, import counts, option limits,
confirmations without a terminal, whole identifiers in tables, where stores are."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import engram
from engram.cli import cli

ENV = {"ENGRAM_EMBEDDER": "none", "COLUMNS": "60"}  # a narrow terminal, as tables meet in real life


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), env=ENV, **kwargs)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as memory:
        session = memory.session_start()
        memory.task_create("planner", {"goal": "trip"}, session_id=session.id)
        memory.store("diet", "vegetarian")
        memory.store("city", "Lisbon")
        memory.add_message(session.id, "user", "hello")
        memory.add_message(session.id, "assistant", "hi")
    return url


def test_export_progress_ends_at_its_total(url: str, tmp_path: Path) -> None:
    result = invoke("--db", url, "export", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0, result.output
    assert "exported 1 session, 1 task, 2 entries, 2 messages" in result.stdout
    done, total = map(int, re.search(r"(\d+)/(\d+)", result.stderr).groups())
    assert done == total == 6  # conversation records are counted in the total too


def test_a_second_import_says_nothing_was_new(url: str, tmp_path: Path) -> None:
    dump = tmp_path / "out.jsonl"
    assert invoke("--db", url, "export", str(dump)).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    first = invoke("--db", other, "import", str(dump))
    assert first.exit_code == 0, first.output
    assert "6 new, 0 already there" in first.stdout
    second = invoke("--db", other, "import", str(dump))
    assert second.exit_code == 0, second.output
    assert "0 new, 6 already there" in second.stdout
    assert json.loads(invoke("--db", other, "import", str(dump), "--json").stdout)["entry"] == 2  # JSON unchanged


@pytest.mark.parametrize("ttl", ["0", "-5", "4e9"])
def test_ttl_out_of_range_says_what_is_allowed(url: str, ttl: str) -> None:
    result = invoke("--db", url, "store", "k", "v", "--ttl", ttl)
    assert result.exit_code == 2
    assert "--ttl must be a positive number of seconds" in result.stderr
    assert "omit --ttl for no expiry" in result.stderr
    assert invoke("--db", url, "store", "k", "v", "--ttl", "0.5").exit_code == 0  # fractions stay allowed


def test_user_delete_documents_yes() -> None:
    text = " ".join(invoke("user", "delete", "--help").output.split())
    assert "--yes Delete the user and revoke their keys without asking" in text
    assert "asks for confirmation" in text and "not a terminal" in text


def test_delete_without_a_terminal_or_yes_fails_clearly(url: str) -> None:
    assert invoke("--db", url, "user", "create", "bob").exit_code == 0
    result = invoke("--db", url, "user", "delete", "bob", input="y\n")  # stdin is a pipe, not a terminal
    assert result.exit_code == 2
    assert "standard input is not a terminal: add --yes" in result.stderr
    assert "bob" in invoke("--db", url, "user", "list").stdout  # nothing deleted
    namespace = invoke("--db", url, "delete-namespace", "default")
    assert namespace.exit_code == 2 and "add --yes" in namespace.stderr  # the same rule for every delete
    history = invoke("--db", url, "chat", "delete", "some-session")
    assert history.exit_code == 2 and "add --yes" in history.stderr
    assert invoke("--db", url, "user", "delete", "bob", "--yes").exit_code == 0


def test_delete_without_yes_does_not_wait_on_an_open_pipe(url: str) -> None:
    """A script whose stdin stays open (a CI step, a pipe from a quiet process) must not hang."""
    assert invoke("--db", url, "user", "create", "bob").exit_code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "engram.cli", "--db", url, "user", "delete", "bob"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **ENV},
    )
    try:
        code = proc.wait(timeout=60)  # stdin is never written nor closed; the old code waited here forever
        stderr = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    assert code == 2 and "add --yes" in stderr


def test_key_tables_show_the_whole_prefix(url: str) -> None:
    assert invoke("--db", url, "user", "create", "someone-with-a-rather-long-name").exit_code == 0
    created = invoke("--db", url, "key", "create", "--user", "someone-with-a-rather-long-name",
                     "--name", "a long label for the key of the nightly batch job", "--json")
    prefix = json.loads(created.stdout)["prefix"]
    listed = invoke("--db", url, "key", "list")
    assert listed.exit_code == 0, listed.output
    assert prefix in listed.stdout and "…" not in listed.stdout


def test_copy_prints_where_both_stores_are(url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dump").mkdir()
    result = invoke("copy", url, "json:///dump")
    assert result.exit_code == 0, result.output
    assert f"from: {tmp_path / 'e.db'}" in result.stdout
    assert f"to:   {tmp_path / 'dump'}" in result.stdout
    missing = invoke("copy", url, "json:///nowhere")
    assert missing.exit_code == 2 and f"directory {tmp_path / 'nowhere'} does not exist" in missing.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_banner(tmp_path: Path) -> str:
    """What `engram --db sqlite:///rel.db serve` prints before it serves, run from tmp_path."""
    pytest.importorskip("uvicorn")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engram.cli", "--db", "sqlite:///rel.db", "serve", "--port", str(_free_port())],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **ENV, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "key create" in line or "X-API-Key" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
    return "".join(lines)


def test_serve_prints_the_store_path_and_how_to_mint_another_admin_key(tmp_path: Path) -> None:
    first = _serve_banner(tmp_path)
    assert f"(store: {tmp_path / 'rel.db'})" in first
    assert "It is shown only this once" in first
    second = _serve_banner(tmp_path)
    assert f"(store: {tmp_path / 'rel.db'})" in second
    assert "An admin key exists" in second
    assert "engram --db sqlite:///rel.db key create --role server_admin" in second


def test_store_keeps_a_context_that_get_shows(url: str) -> None:
    assert invoke("--db", url, "store", "t7", "Yes, last spring!", "--context", "8 May 2023").exit_code == 0
    shown = invoke("--db", url, "get", "t7")
    assert shown.exit_code == 0 and "context: 8 May 2023" in shown.stdout and "Yes, last spring!" in shown.stdout
    assert json.loads(invoke("--db", url, "get", "t7", "--json").stdout)["context"] == "8 May 2023"
    assert json.loads(invoke("--db", url, "get", "diet", "--json").stdout)["context"] is None
