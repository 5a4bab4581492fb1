"""Four processes write into one PostgreSQL database at once, keys overlapping.

Nothing may be lost or duplicated, and an upsert must stay an upsert: every
process that stores a shared key gets the same id back, the id it has at the end.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
import traceback

import pytest

import engram

pytestmark = pytest.mark.slow

WORKERS = 4
OWN_KEYS = 150  # per worker
SHARED_KEYS = 50  # written by every worker
TIMEOUT_S = 120


def _worker(url: str, worker: int, start: mp.Event, errors: mp.Queue, results: mp.Queue) -> None:
    try:
        rng = random.Random(worker)
        start.wait(30)
        ids: list[tuple[str, str, str]] = []
        with engram.Memory(url) as memory:
            session = memory.session_start({"worker": worker})
            shared = [f"shared-{j}" for j in range(SHARED_KEYS)]
            rng.shuffle(shared)
            own = [f"w{worker}-{i}" for i in range(OWN_KEYS)]
            for i, key in enumerate(shared):
                entry = memory.store(key, f"written by {worker}", namespace="shared", metadata={"w": worker})
                ids.append((key, entry.id, entry.created_at.isoformat()))
                # Interleave batches: own keys plus a repeat of shared ones, in one transaction.
                batch = own[i * 3 : i * 3 + 3]
                items = [{"key": k, "content": f"own {k}", "namespace": f"ns{worker}"} for k in batch]
                items += [{"key": k, "content": f"batch by {worker}", "namespace": "shared"} for k in shared[max(0, i - 2) : i + 1]]
                memory.store_many(items)
                if i % 5 == 0:
                    memory.task_create("agent", {"i": i}, session_id=session.id)
            memory.store_many([{"key": k, "content": f"own {k}", "namespace": f"ns{worker}"} for k in own[SHARED_KEYS * 3 :]])
        results.put((worker, ids))
    except BaseException:  # noqa: BLE001 - everything goes back to the test
        errors.put(f"worker {worker}: {traceback.format_exc()}")


def test_four_processes_one_database(postgres_url):
    with engram.Memory(postgres_url):  # migrate first; racing migrations are tested elsewhere
        pass
    ctx = mp.get_context("spawn")
    start, errors, results = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(postgres_url, w, start, errors, results)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    start.set()
    returned: dict[int, list[tuple[str, str, str]]] = {}
    failures: list[str] = []
    while len(returned) + len(failures) < WORKERS:
        try:
            worker, ids = results.get(timeout=TIMEOUT_S)
            returned[worker] = ids
        except queue.Empty:
            break
        while not errors.empty():
            failures.append(errors.get())
    for p in procs:
        p.join(30)
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, "\n".join(failures)
    assert len(returned) == WORKERS

    with engram.Memory(postgres_url) as memory:
        entries = memory.list(limit=10_000)
        stats = memory.stats()
        # Nothing lost, nothing duplicated.
        assert len(entries) == stats.entries == WORKERS * OWN_KEYS + SHARED_KEYS
        assert len({(e.namespace, e.key) for e in entries}) == len(entries)
        assert len({e.id for e in entries}) == len(entries)
        for w in range(WORKERS):
            own = memory.list(namespace=f"ns{w}", limit=1000)
            assert sorted(e.key for e in own) == sorted(f"w{w}-{i}" for i in range(OWN_KEYS))
        # Upserts stayed upserts: one id (and created_at) per shared key, whoever wrote it.
        final = {e.key: e for e in memory.list(namespace="shared", limit=1000)}
        assert len(final) == SHARED_KEYS
        for ids in returned.values():
            for key, ident, created in ids:
                assert final[key].id == ident, key
                assert final[key].created_at.isoformat() == created, key
        assert stats.sessions == WORKERS
        assert stats.tasks == WORKERS * len(range(0, SHARED_KEYS, 5))
