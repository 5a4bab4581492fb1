"""The embedding cache, keyed by (model, content hash): unchanged text is embedded once.

Vectors go through the cache layer (``storage.cache``), base64 float32 under
``<model>:<hash>``, so with a Redis cache every process shares what any of
them embedded. In front of a shared layer sits a small LRU of this process
(``embedding_cache_size``): a vector never changes for its key, so the copy
held here is never stale, and a repeat costs no round trip. Across processes
the store is also a cache: vectors are kept with the hash of the content they
embed, and :meth:`Memory.store_many` / import / reindex look there too.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from hashlib import blake2b
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engram.cache import Cache

_PLAIN_MODEL = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def content_hash(text: str) -> bytes:
    """16-byte digest of the text as embedded."""
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def encode_vector(vector: np.ndarray) -> str:
    """A vector as base64 of its little-endian float32 bytes (a third of its JSON list's size)."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode(
        "ascii"
    )


def decode_vector(text: object, dimensions: int | None = None) -> np.ndarray | None:
    """The vector :func:`encode_vector` wrote; None for anything else (a value written by something else)."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if (
        not raw
        or len(raw) % 4
        or (dimensions is not None and len(raw) != 4 * dimensions)
    ):
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


class EmbeddingCache:
    """Vectors by (model name, content hash): a local LRU, in front of the cache layer ``shared``.

    Args:
        size: vectors the local LRU holds (0: none).
        shared: the cache layer's view for embeddings; None keeps vectors in this process only.
    """

    def __init__(self, size: int = 10_000, shared: Cache | None = None):
        self.size = size
        self.shared = shared
        self._data: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(model: str, digest: bytes) -> str:
        name = (
            model
            if _PLAIN_MODEL.match(model)
            else blake2b(model.encode(), digest_size=8).hexdigest()
        )
        return f"{name}:{digest.hex()}"

    def get(self, model: str, digest: bytes) -> np.ndarray | None:
        return self.get_many(model, [digest]).get(digest)

    def get_many(
        self, model: str, digests: Sequence[bytes], dimensions: int | None = None
    ) -> dict[bytes, np.ndarray]:
        """The vectors known for these digests (local first, then the shared layer in one call)."""
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for digest in digests:
                vec = self._data.get((model, digest))
                if vec is not None:
                    self._data.move_to_end((model, digest))
                    found[digest] = vec
        wanted = [d for d in dict.fromkeys(digests) if d not in found]
        if wanted and self.shared is not None:
            keys = {self._key(model, d): d for d in wanted}
            fetched: dict[bytes, np.ndarray] = {}
            for key, text in self.shared.get_many(list(keys)).items():
                vec = decode_vector(text, dimensions)
                if vec is not None:
                    fetched[keys[key]] = vec
            self._remember(model, fetched)
            found.update(fetched)
        return found

    def put(self, model: str, digest: bytes, vector: np.ndarray) -> None:
        self.put_many(model, {digest: vector})

    def put_many(self, model: str, vectors: Mapping[bytes, np.ndarray]) -> None:
        """Keep the vectors here and in the shared layer (one call)."""
        if not vectors:
            return
        self._remember(model, vectors)
        if self.shared is not None:
            self.shared.set_many(
                {self._key(model, d): encode_vector(v) for d, v in vectors.items()}
            )

    def _remember(self, model: str, vectors: Mapping[bytes, np.ndarray]) -> None:
        if self.size <= 0 or not vectors:
            return
        with self._lock:
            for digest, vec in vectors.items():
                self._data[(model, digest)] = vec
                self._data.move_to_end((model, digest))
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
