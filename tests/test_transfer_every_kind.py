"""Copy and export/import carry every kind of record, entry and message vectors included,
between every ordered pair of backends (memory, sqlite, postgres, redis, json: 20 pairs).

Compared kind by kind: the stats counts, and the stored vectors of entries and
of messages. Also: reindex reports entries and messages apart.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from click.testing import CliRunner

import engram
from engram.cli import cli
from engram.copy import copy_store

BACKENDS = ["memory", "sqlite", "postgres", "redis", "json"]
PAIRS = list(itertools.permutations(BACKENDS, 2))
ENTRY_VECTORS = {("pets", "cat"): [1.0, 0.0, 0.0], ("pets", "dog"): [0.0, 1.0, 0.0], ("default", "note"): [0.3, 0.3, 0.9]}
MESSAGE_VECTORS = [[0.0, 0.0, 1.0], [0.6, 0.8, 0.0], [0.1, 0.2, 0.3]]


def opened(url: str) -> engram.Memory:
    return engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))


def populate(m: engram.Memory) -> dict[str, str]:
    """Every kind: entries with and without vectors, sessions, tasks, messages with vectors, a summary,
    profiles and checkpoints. Returns the ids of the messages that have vectors."""
    for (ns, key), vector in ENTRY_VECTORS.items():
        m.store(key, f"the {key} entry", namespace=ns, embedding=vector)
    m.store("plain", "an entry without a vector")
    s = m.session_start({"user": "u1"})
    ended = m.session_start()
    m.session_end(ended.id)
    task = m.task_create("researcher", {"q": "why?"}, session_id=s.id)
    m.task_update(task.id, "completed", output={"a": 1})
    with_vectors = {}
    for i, vector in enumerate(MESSAGE_VECTORS):
        msg = m.add_message(s.id, "user" if i % 2 == 0 else "assistant", f"message {i}", user_id="u1", embedding=vector)
        with_vectors[msg.id] = f"message {i}"
    last = m.add_message(s.id, "user", "no vector here", embed=False)
    m.summary_save(s.id, "a summary", message_count=4, last_seq=last.seq)
    m.profile_save("u1", {"city": {"value": "Oslo", "source_message_ids": [last.id]}})
    m.checkpoint_save(s.id, {"step": 1})
    done = m.checkpoint_save(s.id, {"step": 2})
    m.checkpoint_resume(done.id)
    return with_vectors


def kinds(m: engram.Memory) -> dict[str, int]:
    s = m.stats()
    return {
        "entries": s.entries, "sessions": s.sessions, "tasks": s.tasks, "messages": s.messages,
        "summaries": s.summaries, "profiles": s.profiles, "checkpoints": s.checkpoints,
        "entry_vectors": m.backend.count_vectors(None), "message_vectors": m.backend.count_message_vectors(),
    }  # fmt: skip


def assert_same(src: engram.Memory, dst: engram.Memory, message_ids: list[str]) -> None:
    assert kinds(dst) == kinds(src)
    assert kinds(dst)["entry_vectors"] == 3 and kinds(dst)["message_vectors"] == 3
    assert dst.stats().embedding_model == src.stats().embedding_model
    idents = [*ENTRY_VECTORS, ("default", "plain")]
    theirs, ours = src.backend.get_vectors(idents), dst.backend.get_vectors(idents)
    assert set(ours) == set(theirs) == set(ENTRY_VECTORS)
    assert all(np.allclose(ours[i], theirs[i]) for i in theirs)
    theirs, ours = src.backend.get_message_vectors(message_ids), dst.backend.get_message_vectors(message_ids)
    assert set(ours) == set(theirs) == set(message_ids)
    assert all(np.allclose(ours[i], theirs[i]) for i in theirs)
    # and they are searchable there
    hits = dst.search_messages("", mode="vector", vector=MESSAGE_VECTORS[0], limit=1).results
    assert hits[0].message.content == "message 0"


@pytest.mark.parametrize("src_backend, dst_backend", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_copy_carries_every_kind_and_the_vectors(url_of, src_backend, dst_backend):
    with opened(url_of(src_backend, "src")) as src, opened(url_of(dst_backend, "dst")) as dst:
        ids = list(populate(src))
        copy_store(src, dst, batch_size=2)
        assert_same(src, dst, ids)
        copy_store(src, dst)  # twice is once
        assert kinds(dst) == kinds(src)


@pytest.mark.parametrize("src_backend, dst_backend", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_export_import_carries_every_kind_and_the_vectors(url_of, tmp_path, src_backend, dst_backend):
    with opened(url_of(src_backend, "src")) as src, opened(url_of(dst_backend, "dst")) as dst:
        ids = list(populate(src))
        counts = src.export(tmp_path / "dump.jsonl")
        assert counts["message"] == 4
        dst.import_(tmp_path / "dump.jsonl")
        assert_same(src, dst, ids)
        dst.import_(tmp_path / "dump.jsonl")  # twice is once
        assert kinds(dst) == kinds(src)


class CountingEmbedder:
    """A tiny deterministic embedder (no model): 3 dimensions from the text's length and letters."""

    name = "test-counting"
    dimensions = 3

    def embed(self, texts):
        return np.array([[len(t) + 1.0, t.count("e") + 1.0, t.count("a") + 1.0] for t in texts], dtype=np.float32)


def test_reindex_reports_entries_and_messages_apart(tmp_path, monkeypatch):
    import engram.memory.semantic as semantic

    monkeypatch.setattr(semantic, "create_embedder", lambda settings: CountingEmbedder())
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with opened(url) as m:
        for i in range(4):
            m.store(f"k{i}", f"entry {i}", embed=False)
        s = m.session_start().id
        for i in range(3):
            m.add_message(s, "user", f"message {i}", embed=False)
    result = CliRunner().invoke(cli, ["--db", url, "reindex"])
    assert result.exit_code == 0, result.output
    assert "embedded 4 entries and 3 messages" in result.output
    with opened(url) as m:
        m.store("k9", "one more", embed=False)
        done = m.reindex()
        assert (done, done.entries, done.messages) == (1, 1, 0)
