"""An embedder over any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

OpenAI, Ollama (``http://localhost:11434/v1``), vLLM and TEI all speak it:
``{"model": ..., "input": [texts], "dimensions"?: n}`` answered with
``{"data": [{"index": i, "embedding": [floats]}, ...]}``. Failures that may
pass (connection errors, timeouts, 429 and 5xx) are retried with exponential
backoff; anything else is reported at once.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from engram.embeddings import normalize
from engram.errors import BackendError, ConfigError, MissingDependency

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible HTTP endpoint.

    Args:
        model: the served model, e.g. ``text-embedding-3-small`` or ``nomic-embed-text``.
        base_url: the API root ending in ``/v1``.
        api_key: sent as ``Authorization: Bearer``; None for local servers.
        dimensions: asked of the endpoint (models that support shortening) and checked.
        timeout: seconds per request. retries: extra attempts after a failure that may pass.
        batch_size: texts per request.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        batch_size: int = 64,
        backoff: float = 0.5,
        client: Any = None,
    ):
        try:
            import httpx
        except ImportError as exc:
            raise MissingDependency("the openai embedder needs httpx: pip install 'engram[openai]'") from exc
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"embedding_base_url must start with http:// or https://, got {base_url!r}")
        self.name = model
        self._dimensions = dimensions
        self.url = base_url.rstrip("/") + "/embeddings"
        self.retries = retries
        self.batch_size = batch_size
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(timeout=timeout, headers=headers)
        self._httpx = httpx

    @property
    def dimensions(self) -> int:
        """The vector size: as configured, else learnt from one request."""
        if self._dimensions is None:
            self._dimensions = int(self._request(["dimensions"]).shape[1])
        return self._dimensions

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in requests of ``batch_size``."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        parts = [self._request(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        vectors = np.vstack(parts)
        if self._dimensions is not None and vectors.shape[1] != self._dimensions:
            raise BackendError(
                f"{self.url} returned {vectors.shape[1]}-dimensional vectors for model {self.name}; "
                f"embedding_dimensions is {self._dimensions}"
            )
        self._dimensions = vectors.shape[1]
        return normalize(vectors)

    def _request(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.name, "input": texts, "encoding_format": "float"}
        if self._dimensions is not None:
            body["dimensions"] = self._dimensions
        httpx = self._httpx
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                if last:
                    raise BackendError(f"embeddings request to {self.url} failed: {type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code < 300:
                    return self._parse(response, len(texts))
                if last or response.status_code not in RETRY_STATUSES:
                    raise BackendError(
                        f"embeddings request to {self.url} failed with HTTP {response.status_code}: {response.text[:300]}"
                    )
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _parse(self, response: Any, count: int) -> np.ndarray:
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"{self.url} did not answer in the OpenAI embeddings format: {exc}") from exc
        if vectors.ndim != 2 or len(vectors) != count:
            raise BackendError(f"{self.url} returned {len(vectors)} embeddings for {count} inputs")
        return vectors

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.name!r}, url={self.url!r})"
