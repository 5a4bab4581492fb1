"""An entry and its vector commit together: a writer killed with SIGKILL never leaves
an entry without its vector (which vector search could not find).

A subprocess stores entries with precomputed embeddings (no model) in a loop,
one at a time and in batches; it is killed mid-way, several times, and after
each kill every committed entry must have its vector.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import engram

WRITER = """
import sys, engram
url, round_ = sys.argv[1], sys.argv[2]
with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as m:
    i = 0
    while True:
        v = [1.0, (i % 97) / 97.0, 0.5]
        if i % 3:
            m.store(f"r{round_}-{i}", f"entry {i} of round {round_}", embedding=v)
            i += 1
        else:
            m.store_many([{"key": f"r{round_}-{i + j}", "content": f"entry {i + j}", "embedding": v} for j in range(5)])
            i += 5
        # the same keys again with new content: an upsert that drops the old vector and writes a new one
        m.store(f"r{round_}-0", f"rewritten {i}", embedding=v)
        if i >= 20:
            print("going", flush=True)
"""

ROUNDS = 4


@pytest.fixture(params=["sqlite", "postgresql", "redis", "json"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'k.db'}"
    if request.param == "json":
        (tmp_path / "k").mkdir()
        return f"json:///{tmp_path / 'k'}"
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "redis_url")


def counts(url: str) -> tuple[int, int]:
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as m:
        stats = m.stats()
        return stats.entries, stats.vectors


def test_a_killed_writer_leaves_no_entry_without_its_vector(url):
    for round_ in range(ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(round_)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()  # it has written a while
        assert line == b"going\n", proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05 + 0.07 * round_)  # kill at a different point each round
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        entries, vectors = counts(url)
        assert entries > 0
        assert entries == vectors, f"round {round_}: {entries} entries but {vectors} vectors"


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql", "redis", "json"])
def test_a_vector_of_another_model_stores_neither(backend, tmp_path, request):
    (tmp_path / "j").mkdir()
    urls = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'm.db'}", "json": f"json:///{tmp_path / 'j'}"}
    url = urls.get(backend) or request.getfixturevalue("postgres_url" if backend == "postgresql" else "redis_url")
    from engram._time import utcnow
    from engram.models import Entry
    from engram.stores.base import VectorItem, VectorModel

    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as m:
        m.store("first", "three dimensions", embedding=[1.0, 0.0, 0.0])
        now = utcnow()
        entry = Entry.model_construct(
            id="e-other", key="other", namespace="default", content="four", metadata={},
            created_at=now, updated_at=now, expires_at=None,
        )  # fmt: skip
        with pytest.raises(engram.ConfigError):
            m.backend.put_entries_with_vectors(
                [entry], [VectorItem("default", "other", "four", [0.5, 0.5, 0.5, 0.5])], now=now,
                model=VectorModel("another", 4),
            )  # fmt: skip
        assert m.get("other") is None
        assert (m.stats().entries, m.stats().vectors) == (1, 1)
