"""JSON-files backend specifics: the directory layout, atomic writes, several processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import traceback
from pathlib import Path

import pytest

import engram
from engram.stores.jsonfiles import JsonStore, parse_json_url


def url_of(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)  # a json:// store never creates its directory
    return f"json:///{path}"


def test_url_parsing(tmp_path):
    assert parse_json_url("json:///rel/dir") == Path("rel/dir")
    assert parse_json_url(f"json:///{tmp_path}") == tmp_path
    for bad in ("json://host/dir", "json:///", "json:///dir?x=1"):
        with pytest.raises(engram.ConfigError):
            parse_json_url(bad)


def test_layout_is_plain_json(tmp_path):
    with engram.Memory(url_of(tmp_path / "s")) as memory:
        memory.store("k", "hello\nworld", metadata={"a": 1})
        memory.store("k2", "second", context="a title")
        s = memory.session_start()
        memory.task_create("agent", {"x": 1}, session_id=s.id)
    root = tmp_path / "s"
    assert sorted(p.name for p in root.iterdir()) == [".lock", "entries.json", "sessions.json", "tasks.json"]
    data = json.loads((root / "entries.json").read_text())
    assert data["format"] == "engram-json" and data["version"] == 1 and data["kind"] == "entries"
    assert [r["key"] for r in data["records"]] == ["k", "k2"]  # first-insert order
    # The context is written only when there is one (issue 15): files without it read as before.
    assert set(data["records"][0]) == set(engram.Entry.model_fields) - {"context"}
    assert set(data["records"][1]) == set(engram.Entry.model_fields) and data["records"][1]["context"] == "a title"
    lines = (root / "entries.json").read_text().splitlines()
    assert len(lines) == 2 + 2  # envelope line, one line per record, closing line
    assert (root / "entries.json").stat().st_mode & 0o777 == 0o600  # stored memory is private to its owner


def test_changes_by_another_store_are_seen(tmp_path):
    url = url_of(tmp_path)
    with engram.Memory(url) as a, engram.Memory(url) as b:
        a.store("k", "from a")
        assert b.get("k").content == "from a"
        b.store("k", "from b")
        assert a.get("k").content == "from b"
        assert a.get("k").id == b.get("k").id
        b.delete("k")
        assert a.get("k") is None


def test_a_failed_write_changes_nothing(tmp_path, monkeypatch):
    with engram.Memory(url_of(tmp_path)) as memory:
        memory.store("k", "v1")
        before = (tmp_path / "entries.json").read_bytes()

        def broken_fsync(fd):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "fsync", broken_fsync)
        with pytest.raises(engram.BackendError, match="No space left"):
            memory.store("k", "v2")
        monkeypatch.undo()
        assert (tmp_path / "entries.json").read_bytes() == before
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert memory.get("k").content == "v1"  # memory reloaded from the files


def test_corrupt_file_is_a_backend_error(tmp_path):
    with engram.Memory(url_of(tmp_path)) as memory:
        memory.store("k", "v")
    (tmp_path / "entries.json").write_text("{not json")
    with pytest.raises(engram.BackendError, match="entries.json"):
        engram.Memory(url_of(tmp_path))


def test_newer_format_is_refused(tmp_path):
    (tmp_path / "entries.json").write_text(json.dumps({"format": "engram-json", "version": 99, "records": []}))
    with pytest.raises(engram.ConfigError, match="version 99"):
        JsonStore(tmp_path)


def _writer(url: str, worker: int, start: mp.Event, errors: mp.Queue) -> None:
    try:
        start.wait(30)
        with engram.Memory(url) as memory:
            for i in range(40):
                memory.store(f"w{worker}-{i}", f"entry {i}", namespace=f"ns{i % 2}")
                memory.store("shared", f"by {worker}")
            memory.store_many([{"key": f"w{worker}-bulk{i}", "content": "bulk"} for i in range(20)])
    except BaseException:  # noqa: BLE001 - everything goes back to the test
        errors.put(f"writer {worker}: {traceback.format_exc()}")


@pytest.mark.slow
def test_several_processes_write_one_directory(tmp_path):
    url = url_of(tmp_path)
    first = engram.Memory(url).store("shared", "start")
    ctx = mp.get_context("spawn")
    start, errors = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, w, start, errors)) for w in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, "\n".join(failures)
    with engram.Memory(url) as memory:
        assert memory.stats().entries == 4 * 60 + 1
        assert memory.get("shared").id == first.id
