"""``EngramRetriever``: LangChain's ``BaseRetriever`` over engram search (full-text, vector or hybrid)."""

from __future__ import annotations

import asyncio
from typing import Any

from engram.integrations._extras import require
from engram.memory import Memory
from engram.models import SearchHit

require("langchain", "langchain_core.retrievers")

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


def to_document(hit: SearchHit) -> Document:
    """A search hit as a Document: the entry's content, its metadata, and how it matched."""
    entry = hit.entry
    return Document(
        id=entry.id,
        page_content=entry.content,
        metadata={**entry.metadata, "key": entry.key, "namespace": entry.namespace,
                  "score": hit.score, "match_type": hit.match_type},
    )  # fmt: skip


class EngramRetriever(BaseRetriever):
    """Documents from engram's search, best first.

    ``EngramRetriever(memory=m, namespace="docs", mode="hybrid", k=5)``; ``k``,
    ``namespace``, ``filter``, ``mode`` and ``threshold`` may also be given per
    call (``retriever.invoke("question", k=2)``).

    Args:
        namespace: one engram namespace, or None for all.
        mode: ``auto`` (hybrid when vectors exist, else full-text), ``hybrid``, ``vector`` or ``fts``.
        filter: metadata equalities every document must have (``{"topic": "billing"}``).
        threshold: the least cosine similarity a hit found by meaning must reach.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Memory
    namespace: str | None = None
    mode: str = "auto"
    k: int = 4
    filter: dict[str, Any] | None = None
    threshold: float | None = None

    def _search(self, query: str, overrides: dict[str, Any]) -> list[Document]:
        options = {"k": self.k, "namespace": self.namespace, "mode": self.mode, "filter": self.filter,
                   "threshold": self.threshold, **overrides}  # fmt: skip
        unknown = set(options) - {"k", "namespace", "mode", "filter", "threshold"}
        if unknown:
            raise TypeError(
                f"unknown search option(s) {', '.join(sorted(unknown))}: use k, namespace, mode, filter, threshold"
            )
        found = self.memory.search(
            query, namespace=options["namespace"], limit=options["k"], metadata=options["filter"],
            mode=options["mode"], threshold=options["threshold"],
        )  # fmt: skip
        return [to_document(hit) for hit in found.results]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._search(query, kwargs)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query, kwargs)
