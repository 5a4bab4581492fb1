"""Embedding overlapped with writing: batch N+1 is embedded while batch N is written.

Embedding is CPU work in ONNX Runtime (which releases the GIL), writing is
database work, so one background thread hides the shorter of the two behind
the longer. Writes stay on the calling thread and in their order; a failure
stops the pipeline where the plain loop (embed 1, write 1, embed 2, ...)
would have stopped: the batches before it are written, none after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")
P = TypeVar("P")


class Overlap(Generic[P]):
    """One batch prepared in the background while the previous one is written.

    Use as a context manager: leaving it normally writes the last batch;
    leaving it by an exception writes nothing more (and waits for the batch
    being prepared, so no work outlives the caller's error).
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[Future[Any], Callable[[Any], None]] | None = None

    def submit(self, prepare: Callable[[], P], write: Callable[[P], None]) -> None:
        """Start ``prepare()`` in the background, then write the batch submitted before this one."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="engram-ingest")
        future = self._executor.submit(prepare)
        previous, self._pending = self._pending, (future, write)
        if previous is not None:
            previous[1](previous[0].result())  # re-raises a failed prepare, in order

    def drain(self) -> None:
        """Write the batch still pending (there is at most one)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1](pending[0].result())

    def close(self) -> None:
        """Drop what is pending without writing it; waits for a prepare still running."""
        self._pending = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> Overlap[P]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self.drain()
        finally:
            self.close()


def overlapped(batches: Iterable[T], prepare: Callable[[T], P], write: Callable[[T, P], None]) -> None:
    """``write(batch, prepare(batch))`` for each batch in order, preparing the next one meanwhile."""
    with Overlap[P]() as overlap:
        for batch in batches:
            overlap.submit(lambda b=batch: prepare(b), lambda prepared, b=batch: write(b, prepared))
