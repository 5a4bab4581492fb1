"""An embedding cache keyed by (model, content hash): unchanged text is embedded once.

In memory, per process, least recently used dropped first. Across processes
the store itself is the cache: vectors are kept with the hash of the content
they embed, and :meth:`Memory.store_many` / import / reindex look there first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from hashlib import blake2b

import numpy as np


def content_hash(text: str) -> bytes:
    """16-byte digest of the text as embedded."""
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    """LRU of vectors by (model name, content hash)."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._data: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str, digest: bytes) -> np.ndarray | None:
        with self._lock:
            vec = self._data.get((model, digest))
            if vec is not None:
                self._data.move_to_end((model, digest))
            return vec

    def put(self, model: str, digest: bytes, vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[(model, digest)] = vector
            self._data.move_to_end((model, digest))
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
