"""engram inside LangGraph: ``EngramStore`` (long-term memory, a ``BaseStore``) and
``EngramSaver`` (short-term memory, a ``BaseCheckpointSaver``), over one engram ``Memory``.

Needs ``pip install 'engram[langgraph]'``; without it, importing this module
raises ImportError saying so.
"""

from __future__ import annotations

from engram.integrations._extras import require

require("langgraph", "langgraph.store.base", "langgraph.checkpoint.base")

from engram.integrations._lg_saver import EngramSaver
from engram.integrations._lg_store import EngramStore

__all__ = ["EngramSaver", "EngramStore"]
