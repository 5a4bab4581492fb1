"""PostgreSQL's bulk entry path (``engram.stores.postgres.bulk``) sends a large batch
in parts, the next part's rows built on a worker thread while the server upserts
this one. Concurrent batches over the same keys must still never deadlock: every
batch locks its rows in (namespace, key) order across all its parts."""

from __future__ import annotations

import threading

import pytest

import engram
from engram.stores.postgres import bulk as _bulk


@pytest.fixture(autouse=True)
def small_parts(monkeypatch) -> None:
    monkeypatch.setattr(_bulk, "FIRST_PART_ROWS", 5)
    monkeypatch.setattr(_bulk, "PART_ROWS", 17)


def _items(tag: str, n: int = 240) -> list[dict]:
    # Keys out of order on purpose (and across namespaces): each batch must sort them.
    keys = [f"k{(i * 97) % n:04d}" for i in range(n)]
    return [{"key": k, "content": f"{tag} version of {k}", "namespace": f"ns{i % 4}", "metadata": {"by": tag}}
            for i, k in enumerate(keys)]  # fmt: skip


def test_batches_over_the_same_keys_in_opposite_orders_never_deadlock(postgres_url) -> None:
    memories = [engram.Memory(postgres_url) for _ in range(2)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def load(memory: engram.Memory, tag: str, reverse: bool) -> None:
        items = _items(tag)[::-1] if reverse else _items(tag)
        try:
            start.wait()
            for _ in range(6):
                memory.store_many(items)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(m, tag, rev)) for m, tag, rev in
               ((memories[0], "left", False), (memories[1], "right", True))]  # fmt: skip
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        stored = memories[0].list(limit=1000)
        assert len(stored) == 240
        # Each row is one batch's whole version: content and metadata from the same writer.
        assert all(e.content.startswith(e.metadata["by"]) for e in stored)
    finally:
        for m in memories:
            m.close()


def test_a_batch_in_many_parts_returns_what_each_item_stored(postgres_url) -> None:
    memory = engram.Memory(postgres_url)
    try:
        first = memory.store("k0005", "stored before the batch", namespace="ns1", metadata={"kept": True})
        items = [{k: v for k, v in it.items() if k != "metadata"} for it in _items("bulk")]
        items.append({"key": "k0005", "content": "repeated at the end", "namespace": "ns1"})
        assert memory.store_many(items) == len(items)
        again = memory.get("k0005", namespace="ns1")
        assert (again.id, again.created_at, again.metadata, again.content) == (
            first.id, first.created_at, {"kept": True}, "repeated at the end"
        )
        assert memory.search("bulk", namespace="ns2", mode="fts", limit=100).count == 60
    finally:
        memory.close()
