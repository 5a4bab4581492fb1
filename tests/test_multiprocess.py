"""Several processes share one SQLite file: no lost writes, no "database is locked".

Workers are started with the ``spawn`` context (a fresh interpreter each, as on
macOS and Windows) and report every exception through a queue, so a failure in
any process fails the test with its traceback.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from pathlib import Path

import pytest

import engram

pytestmark = pytest.mark.slow

WRITERS = 4
WRITES_PER_WRITER = 250
READERS = 2
TIMEOUT_S = 90


def _writer(
    url: str, worker: int, count: int, ready: mp.Queue, start: mp.Event, errors: mp.Queue, done: mp.Queue
) -> None:
    try:
        with engram.Memory(url) as memory:  # every process opens (and migrates) the new file at once
            ready.put(worker)
            start.wait(TIMEOUT_S)
            for i in range(count):
                memory.store(
                    f"w{worker}-k{i}",
                    f"entry {i} written by worker {worker}",
                    namespace=f"ns{i % 3}",
                    metadata={"worker": worker, "i": i},
                )
    except BaseException:  # noqa: BLE001 - everything goes back to the test
        errors.put(f"writer {worker}: {traceback.format_exc()}")
    finally:
        done.put(worker)


def _reader(
    url: str, worker: int, ready: mp.Queue, start: mp.Event, stop: mp.Event, errors: mp.Queue, reads: mp.Queue
) -> None:
    n = 0
    try:
        with engram.Memory(url) as memory:
            ready.put(worker)
            start.wait(TIMEOUT_S)
            while n == 0 or not stop.is_set():  # at least one full round, however late it starts
                memory.list(limit=50)
                memory.list(namespace="ns1", metadata={"worker": 1}, limit=10)
                memory.search("entry written", limit=10)
                memory.search("worker OR entry", namespace="ns2", limit=5)
                memory.get(f"w0-k{n % WRITES_PER_WRITER}", namespace=f"ns{n % WRITES_PER_WRITER % 3}")
                memory.namespaces()
                memory.stats()
                n += 1
    except BaseException:  # noqa: BLE001
        errors.put(f"reader {worker}: {traceback.format_exc()}")
    finally:
        reads.put(n)


def _upserter(url: str, worker: int, keys: int, rounds: int, start: mp.Event, errors: mp.Queue) -> None:
    try:
        start.wait(30)
        with engram.Memory(url) as memory:
            for r in range(rounds):
                for k in range(keys):
                    memory.store(f"shared-{k}", f"round {r} by {worker}", metadata={"worker": worker, "round": r})
    except BaseException:  # noqa: BLE001
        errors.put(f"upserter {worker}: {traceback.format_exc()}")


def _drain(q: mp.Queue) -> list:
    items = []
    while True:
        try:
            items.append(q.get(timeout=0.2))
        except queue.Empty:
            return items


def _join_all(processes: list, errors: list[str]) -> None:
    for p in processes:
        p.join(TIMEOUT_S)
        if p.is_alive():
            p.kill()
            p.join()
            errors.append(f"{p.name} did not finish within {TIMEOUT_S}s")
        elif p.exitcode != 0:
            errors.append(f"{p.name} exited with {p.exitcode}")


def test_four_writers_and_two_readers_share_one_file(tmp_path: Path):
    ctx = mp.get_context("spawn")
    url = f"sqlite:///{tmp_path / 'shared.db'}"  # every process creates/migrates it concurrently
    start, stop = ctx.Event(), ctx.Event()
    ready_q, errors_q, done_q, reads_q = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()

    writers = [
        ctx.Process(
            target=_writer, args=(url, w, WRITES_PER_WRITER, ready_q, start, errors_q, done_q), name=f"writer-{w}"
        )
        for w in range(WRITERS)
    ]
    readers = [
        ctx.Process(target=_reader, args=(url, r, ready_q, start, stop, errors_q, reads_q), name=f"reader-{r}")
        for r in range(READERS)
    ]
    for p in writers + readers:
        p.start()

    problems: list[str] = []
    finished = []
    try:
        for _ in writers + readers:  # start together, once every process has its store open
            ready_q.get(timeout=TIMEOUT_S)
        start.set()
        for _ in writers:
            finished.append(done_q.get(timeout=TIMEOUT_S))
    except queue.Empty:
        problems.append(f"not every process got ready, or only writers {sorted(finished)} finished, within {TIMEOUT_S}s")
    finally:
        start.set()
        stop.set()
        _join_all(writers + readers, problems)

    problems += _drain(errors_q)
    reads = _drain(reads_q)
    locked = [p for p in problems if "locked" in p]
    assert locked == [], "database is locked:\n" + "\n".join(locked)
    assert problems == [], "\n".join(problems)
    assert len(reads) == READERS and all(n > 0 for n in reads), f"readers did not read: {reads}"

    with engram.Memory(url) as memory:
        assert memory.stats().entries == WRITERS * WRITES_PER_WRITER == 1000
        everything = memory.list(limit=10_000)
        assert len(everything) == 1000
        assert len({e.id for e in everything}) == 1000
        assert {e.key for e in everything} == {
            f"w{w}-k{i}" for w in range(WRITERS) for i in range(WRITES_PER_WRITER)
        }
        assert memory.search("worker", limit=10_000).count == 1000
        assert len(memory.list(metadata={"worker": 2}, limit=10_000)) == WRITES_PER_WRITER


def test_overlapping_upserts_keep_one_entry_per_key_and_its_first_id(tmp_path: Path):
    ctx = mp.get_context("spawn")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    keys = 50
    with engram.Memory(url) as memory:
        first_ids = {f"shared-{k}": memory.store(f"shared-{k}", "initial").id for k in range(keys)}
        created = {e.key: e.created_at for e in memory.list(limit=keys)}

    start = ctx.Event()
    errors_q = ctx.Queue()
    procs = [
        ctx.Process(target=_upserter, args=(url, w, keys, 3, start, errors_q), name=f"upserter-{w}")
        for w in range(4)
    ]
    for p in procs:
        p.start()
    start.set()
    problems: list[str] = []
    _join_all(procs, problems)
    problems += _drain(errors_q)
    assert problems == [], "\n".join(problems)

    with engram.Memory(url) as memory:
        entries = memory.list(limit=10_000)
        assert len(entries) == keys
        assert {e.key: e.id for e in entries} == first_ids
        assert {e.key: e.created_at for e in entries} == created
        for e in entries:
            assert e.content.startswith("round 2 by ")  # every process finished its last round
            assert e.updated_at > e.created_at
        assert memory.search("round", limit=100).count == keys  # one index row per entry, not per write
