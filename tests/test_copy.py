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
    memory.store("pet", "A cat named Ada 🐈 NUL\x00", namespace="user:1", metadata={"nested": {"ok": True}})
    memory.store("hour", "valid for an hour", ttl=3600)
    memory.store("gone", "already expired", namespace="tmp", ttl=0.05)
    memory.store_many([{"key": f"bulk-{i}", "content": f"bulk entry {i}", "metadata": {"i": i}} for i in range(25)])
    active = memory.session_start({"user": "1"})
    ended = memory.session_start()
    memory.session_end(ended.id)
    t1 = memory.task_create("researcher", {"q": "why?"}, session_id=active.id)
    memory.task_update(t1.id, "completed", output={"a": 42})
    memory.task_create("loner", None)
    time.sleep(0.1)  # let "gone" expire: expired entries are copied too


def everything(memory: engram.Memory) -> dict[str, object]:
    stats = memory.stats()
    return {
        "entries": sorted((e.model_dump() for e in memory.list(limit=10_000)), key=lambda d: (d["namespace"], d["key"])),
        "sessions": sorted((s.model_dump() for s in memory.sessions(limit=10_000)), key=lambda d: d["id"]),
        "tasks": sorted((t.model_dump() for t in memory.tasks(limit=10_000)), key=lambda d: d["id"]),
        "counts": (stats.entries, stats.namespaces, stats.sessions, stats.tasks, stats.expired_entries),
        "search": sorted((h.entry.key, h.entry.namespace) for h in memory.search("bulk OR teal", limit=50).results),
    }


@pytest.fixture
def url_of(request, tmp_path):
    def make(backend: str, name: str) -> str:
        if backend == "memory":
            return "memory://"
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / (name + '.db')}"
        if backend == "json":
            return f"json:///{tmp_path / name}"
        return request.getfixturevalue(f"{backend}_url")

    return make


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
        assert counts == {"session": 2, "task": 2, "entry": 29}
        assert sum(seen) == 33
        assert everything(dst) == everything(src)
        for ns, key in [("user:1", "colour"), ("user:1", "pet"), ("default", "bulk-3")]:
            assert dst.get(key, namespace=ns) == src.get(key, namespace=ns)  # ids and timestamps kept

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
    with engram.Memory(src) as memory:
        populate(memory)
    runner = CliRunner()
    result = runner.invoke(cli, ["copy", src, dst])
    assert result.exit_code == 0, result.output
    assert "copied and verified 2 sessions, 2 tasks, 29 entries" in result.output
    result = runner.invoke(cli, ["copy", src, dst, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{"):]) == {"session": 2, "task": 2, "entry": 29}
    with engram.Memory(src) as a, engram.Memory(dst) as b:
        assert everything(a) == everything(b)
    result = runner.invoke(cli, ["copy", src, src])
    assert result.exit_code == 2 and "same store" in result.output
