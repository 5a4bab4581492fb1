"""engram inside LangChain: ``EngramChatMessageHistory`` (a ``BaseChatMessageHistory``),
``EngramRetriever`` (a ``BaseRetriever`` over engram's search) and ``EngramCache``
(a ``BaseCache`` for LLM calls, on engram's cache layer).

Needs ``pip install 'engram[langchain]'``; without it, importing this module
raises ImportError saying so.
"""

from __future__ import annotations

from engram.integrations._extras import require

require("langchain", "langchain_core")

from engram.integrations._lc_cache import EngramCache
from engram.integrations._lc_history import EngramChatMessageHistory
from engram.integrations._lc_retriever import EngramRetriever

__all__ = ["EngramCache", "EngramChatMessageHistory", "EngramRetriever"]
