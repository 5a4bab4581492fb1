"""Export to versioned JSONL and import into a fresh store of the same backend."""

from __future__ import annotations

import json
import time

import pytest

import engram


def populate(memory: engram.Memory) -> None:
    memory.store("colour", "The user likes teal", namespace="user:1", metadata={"src": "chat", "n": 1})
    memory.store("pet", "A cat named Ada 🐈", namespace="user:1", metadata={"nested": {"ok": True}})
    memory.store("colour", "Another user likes red", namespace="user:2")
    memory.store("session-note", "valid for an hour", ttl=3600)
    memory.store("gone", "already expired", namespace="tmp", ttl=0.05)
    memory.store_many([{"key": f"bulk-{i}", "content": f"bulk entry {i}", "metadata": {"i": i}} for i in range(30)])
    memory.store("colour", "The user likes teal and navy", namespace="user:1", metadata={"src": "chat", "n": 2})

    active = memory.session_start({"user": "1"})
    ended = memory.session_start()
    failed = memory.session_start({"why": "crash"})
    memory.session_end(ended.id)
    memory.session_end(failed.id, status="error")

    t1 = memory.task_create("researcher", {"q": "why?"}, session_id=active.id)
    memory.task_update(t1.id, "running")
    t2 = memory.task_create("writer", "draft", session_id=ended.id)
    memory.task_update(t2.id, "completed", output={"text": "done"})
    memory.task_create("loner", None)
    time.sleep(0.1)  # let "gone" expire


def everything(memory: engram.Memory) -> dict[str, object]:
    """All a reader can observe, to compare two stores."""
    stats = memory.stats()
    return {
        "entries": sorted(
            (e.model_dump() for e in memory.list(limit=10_000)), key=lambda d: (d["namespace"], d["key"])
        ),
        "namespaces": memory.namespaces(),
        "sessions": sorted((s.model_dump() for s in memory.sessions(limit=10_000)), key=lambda d: d["id"]),
        "tasks": sorted((t.model_dump() for t in memory.tasks(limit=10_000)), key=lambda d: d["id"]),
        "counts": (stats.entries, stats.namespaces, stats.sessions, stats.tasks, stats.expired_entries),
    }


def test_export_writes_versioned_jsonl(memory, tmp_path):
    populate(memory)
    path = tmp_path / "dump.jsonl"
    counts = memory.export(path)

    assert counts == {"session": 3, "task": 3, "entry": 35}  # 34 live + 1 expired
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "engram"
    assert header["version"] == 1
    records = [json.loads(line) for line in lines[1:]]
    assert len(records) == 41
    kinds = [r["kind"] for r in records]
    assert kinds == sorted(kinds, key=["session", "task", "entry"].index)  # sessions before tasks
    entry = next(r["data"] for r in records if r["kind"] == "entry" and r["data"]["key"] == "pet")
    assert set(entry) == set(engram.Entry.model_fields) - {"context"}  # written only when set (issue 15)
    assert entry["content"] == "A cat named Ada 🐈"
    assert not (tmp_path / "dump.jsonl.partial").exists()


def test_import_into_a_fresh_store_reproduces_everything(memory, memory_factory, tmp_path):
    populate(memory)
    path = tmp_path / "dump.jsonl"
    memory.export(path)

    target = memory_factory()
    counts = target.import_(path)
    assert counts == {"session": 3, "task": 3, "entry": 35}
    assert everything(target) == everything(memory)
    for ns, key in [("user:1", "colour"), ("user:1", "pet"), ("user:2", "colour"), ("default", "bulk-7")]:
        assert target.get(key, namespace=ns) == memory.get(key, namespace=ns)
    assert target.get("gone", namespace="tmp") is None
    assert target.prune().expired_entries == 1


def test_reimport_changes_nothing(memory, memory_factory, tmp_path):
    populate(memory)
    path = tmp_path / "dump.jsonl"
    memory.export(path)
    target = memory_factory()
    target.import_(path)
    before = everything(target)

    assert target.import_(path) == {"session": 3, "task": 3, "entry": 35}
    assert everything(target) == before

    # Importing a store's own export into itself changes nothing either.
    original = everything(memory)
    memory.import_(path)
    assert everything(memory) == original


def test_second_export_is_identical(memory, memory_factory, tmp_path):
    populate(memory)
    memory.export(tmp_path / "a.jsonl")
    target = memory_factory()
    target.import_(tmp_path / "a.jsonl")
    target.export(tmp_path / "b.jsonl")

    def records(name):
        lines = (tmp_path / name).read_text(encoding="utf-8").splitlines()[1:]
        return sorted(lines)

    assert records("a.jsonl") == records("b.jsonl")


@pytest.mark.requires("fts")
def test_imported_entries_are_searchable(memory, memory_factory, tmp_path):
    populate(memory)
    memory.export(tmp_path / "dump.jsonl")
    target = memory_factory()
    target.import_(tmp_path / "dump.jsonl")
    hits = target.search("teal", namespace="user:1")
    assert [h.entry.key for h in hits.results] == ["colour"]
    assert target.search("bulk", limit=100).count == 30
    assert target.search("expired").count == 0


def test_export_of_an_empty_store(memory, memory_factory, tmp_path):
    assert memory.export(tmp_path / "empty.jsonl") == {"session": 0, "task": 0, "entry": 0}
    target = memory_factory()
    assert target.import_(tmp_path / "empty.jsonl") == {"session": 0, "task": 0, "entry": 0}
    assert everything(target) == everything(memory)


def test_progress_is_reported_per_record(memory, memory_factory, tmp_path):
    populate(memory)
    seen: list[int] = []
    memory.export(tmp_path / "dump.jsonl", progress=seen.append)
    assert sum(seen) == 41
    seen.clear()
    memory_factory().import_(tmp_path / "dump.jsonl", progress=seen.append)
    assert sum(seen) == 41


@pytest.mark.parametrize(
    "text, error, words",
    [
        ("", engram.ConfigError, ["not an engram export"]),
        ("not json\n", engram.ConfigError, ["not an engram export"]),
        ('{"format": "other", "version": 1}\n', engram.ConfigError, ["not an engram export"]),
        ('{"format": "engram", "version": 99}\n', engram.ConfigError, ["version 99", "upgrade"]),
        ('{"format": "engram", "version": 1}\n{broken\n', engram.InvalidInput, ["line 2", "not JSON"]),
        ('{"format": "engram", "version": 1}\n{"kind": "alien", "data": {}}\n', engram.InvalidInput, ["line 2", "kind"]),
        (
            '{"format": "engram", "version": 1}\n{"kind": "entry", "data": {"key": "k"}}\n',
            engram.InvalidInput,
            ["line 2", "entry"],
        ),
    ],
)
def test_import_rejects_bad_files(memory, tmp_path, text, error, words):
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(error) as info:
        memory.import_(path)
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)
    assert memory.list() == []


def test_import_of_a_missing_file(memory, tmp_path):
    with pytest.raises(engram.InvalidInput, match="cannot read"):
        memory.import_(tmp_path / "nope.jsonl")


def test_export_into_a_missing_directory(memory, tmp_path):
    memory.store("k", "v")
    with pytest.raises(engram.InvalidInput, match="cannot write"):
        memory.export(tmp_path / "no" / "such" / "dir" / "dump.jsonl")
