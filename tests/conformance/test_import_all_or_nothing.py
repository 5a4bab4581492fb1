"""An import applies a whole file or changes nothing, on every backend.

A bad line anywhere (garbled JSON, a bad record, a bad embedding), or a file
that is not UTF-8 text, is InvalidInput (exit 2 in ``engram import``) and
leaves the store exactly as it was.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import engram
import engram.stores.base
from engram.cli import cli

HEADER = json.dumps({"format": "engram", "version": 1, "embedding_model": {"name": "external", "dimensions": 3}})


def session_line(i: int) -> str:
    return json.dumps(
        {"kind": "session", "data": {"id": f"s{i}", "status": "active", "metadata": {}, "started_at": "2026-01-01T00:00:00Z"}}
    )


def entry_line(key: str, embedding: str | None = None) -> str:
    line = {
        "kind": "entry",
        "data": {"id": f"id-{key}", "key": key, "namespace": "default", "content": f"content of {key}", "metadata": {},
                 "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
    }  # fmt: skip
    if embedding is not None:
        line["embedding"] = embedding
    return json.dumps(line)


def snapshot(memory: engram.Memory) -> tuple[object, ...]:
    stats = memory.stats()
    return (stats.entries, stats.sessions, stats.tasks, stats.messages, stats.vectors, memory.list(limit=100))


def before(memory: engram.Memory) -> tuple[object, ...]:
    memory.store("kept", "was here before the import")
    return snapshot(memory)


def test_a_garbled_line_after_good_ones_changes_nothing(memory, tmp_path):
    was = before(memory)
    path = tmp_path / "bad.jsonl"
    lines = [HEADER] + [session_line(i) for i in range(4)] + ["{garbled"] + [entry_line("late")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(engram.InvalidInput, match="line 6"):
        memory.import_(path)
    assert snapshot(memory) == was
    assert memory.session_get("s0") is None


def test_a_bad_record_at_the_end_changes_nothing(memory, tmp_path):
    was = before(memory)
    path = tmp_path / "bad.jsonl"
    lines = [HEADER] + [entry_line(f"k{i}") for i in range(1500)] + [json.dumps({"kind": "task", "data": {"id": 1}})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")  # more than one batch before the bad line
    with pytest.raises(engram.InvalidInput, match="line 1502"):
        memory.import_(path)
    assert snapshot(memory) == was


def test_a_bad_embedding_changes_nothing(memory, tmp_path):
    was = before(memory)
    path = tmp_path / "bad.jsonl"
    lines = [HEADER, session_line(1), entry_line("a"), entry_line("b", embedding="!!not base64!!")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(engram.InvalidInput, match="line 4"):
        memory.import_(path)
    assert snapshot(memory) == was


@pytest.mark.parametrize(
    "content",
    [
        bytes(range(256)) * 4,  # binary from the first byte
        (HEADER + "\n" + session_line(1) + "\n").encode() + b"\xff\xfe\x00\x01 binary tail\n",
        (HEADER + "\n" + session_line(1) + "\n").encode() + "caf\u00e9\n".encode("latin-1"),
        (HEADER + "\n" + session_line(1) + "\n").encode() + b"\x00\x00\x00\n",  # UTF-8, but NUL bytes
    ],
    ids=["binary", "binary-tail", "latin-1", "nul"],
)
def test_a_binary_or_non_utf8_file_is_invalid_input_and_changes_nothing(memory, tmp_path, content):
    was = before(memory)
    path = tmp_path / "dump.bin"
    path.write_bytes(content)
    with pytest.raises(engram.InvalidInput) as info:
        memory.import_(path)
    message = str(info.value)
    assert str(path) in message and ("UTF-8" in message or "binary" in message)
    assert snapshot(memory) == was


def test_a_good_file_is_applied_whole(memory, tmp_path):
    path = tmp_path / "good.jsonl"
    lines = [HEADER] + [session_line(i) for i in range(4)] + [entry_line(f"k{i}") for i in range(3)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert memory.import_(path) == {"session": 4, "task": 0, "entry": 3}
    assert memory.stats().sessions == 4 and memory.stats().entries == 3


@pytest.mark.requires("persistent")  # the CLI opens the store again
def test_cli_import_of_a_binary_file_exits_2_and_changes_nothing(memory_factory, tmp_path):
    url = memory_factory.url()
    with engram.Memory(url) as m:
        m.store("kept", "here")
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)))
    result = CliRunner().invoke(cli, ["--db", url, "import", str(path)])
    assert result.exit_code == 2, result.output
    assert "UTF-8" in result.output or "binary" in result.output
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("\n".join([HEADER, session_line(1), "{garbled"]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--db", url, "import", str(garbled)])
    assert result.exit_code == 2 and "line 3" in result.output, result.output
    with engram.Memory(url) as m:
        assert (m.stats().entries, m.stats().sessions) == (1, 0)


def test_an_import_that_fails_while_writing_changes_nothing_where_the_backend_has_transactions(memory, tmp_path):
    """A file that checks out but fails in the store half-way (a task of a session that does not
    exist): on SQLite and PostgreSQL the whole import is one transaction, so nothing stays."""
    if memory.backend.transaction.__func__ is engram.stores.base.Store.transaction:  # type: ignore[attr-defined]
        pytest.skip("this backend has no transactions across writes")
    was = before(memory)
    path = tmp_path / "orphan.jsonl"
    task = {"kind": "task", "data": {"id": "t1", "agent_type": "a", "status": "pending", "session_id": "nope",
                                     "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}  # fmt: skip
    lines = [HEADER] + [session_line(i) for i in range(3)] + [entry_line("a", embedding=None), json.dumps(task)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(engram.EngramError):
        memory.import_(path)
    assert snapshot(memory) == was
