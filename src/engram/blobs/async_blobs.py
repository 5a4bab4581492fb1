"""``AsyncMemory.blobs``: the blob store's methods, awaited on the facade's worker pool.

The very same :class:`~engram.blobs.store.BlobStore` methods run on the pool
(as every ``AsyncMemory`` method does), so both APIs behave identically. A
stream from :meth:`open` reads synchronously: read it in a thread
(``asyncio.to_thread``) or use :meth:`get` for small blobs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from engram.blobs.store import BlobStore


def _awaited(name: str) -> Callable[..., Any]:
    method = getattr(BlobStore, name)

    @functools.wraps(method)
    async def call(self: AsyncBlobs, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(method, self.sync, *args, **kwargs))

    return call


class AsyncBlobs:
    """The async twin of :class:`~engram.blobs.store.BlobStore`."""

    def __init__(self, blobs: BlobStore, pool: Executor) -> None:
        self.sync = blobs
        self._pool = pool

    put = _awaited("put")
    get = _awaited("get")
    open = _awaited("open")
    path = _awaited("path")
    exists = _awaited("exists")
    stat = _awaited("stat")
    delete = _awaited("delete")
    list = _awaited("list")
    cleanup = _awaited("cleanup")
    stats = _awaited("stats")
