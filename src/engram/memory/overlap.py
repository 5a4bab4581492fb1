"""Work a search runs beside its query embedding, on a small shared pool of threads.

A hybrid search has two independent halves: the full-text list (BM25 over
the words) and the query's embedding followed by the vector list. Both
spend most of their time outside the GIL (SQLite or a database server;
ONNX Runtime), so with a core free the text list costs no wall time: at
100k entries it is ~3.8 ms of the ~14 ms of CPU of an uncached search
(bench/vectors.py; 0.81-0.90x the wall time with the list after the embedding,
measured on two busy cores).

:func:`beside` starts a task; :func:`joined` takes its result. A task no
worker has picked up yet (every worker busy with other searches) is run by
the caller instead, so a search never waits in the queue longer than doing
the work itself would take.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WORKERS = 4  # searches whose text lists overlap at once; beyond that, callers run their own

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="engram-search")
        return _pool


def beside(task: Callable[[], T]) -> Future[T]:
    """Start ``task`` on a worker thread; take its result with :func:`joined`."""
    return _workers().submit(task)


def joined(future: Future[T], task: Callable[[], T]) -> T:
    """The result of ``task`` started by :func:`beside` (its exception re-raised here); run by the
    caller when no worker has started it."""
    if future.cancel():
        return task()
    return future.result()


def abandon(future: Future[object]) -> None:
    """Drop a task whose result is no longer wanted (the search failed): not run if not started."""
    future.cancel()


__all__ = ["WORKERS", "abandon", "beside", "joined"]
