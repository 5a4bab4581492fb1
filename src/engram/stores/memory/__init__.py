"""The in-memory backend (``memory://``): dicts behind one lock, gone with the process.

Modules: ``store`` (the Store), ``chat``, ``vectors``, ``message_vectors``, ``control`` (the
server's control plane).
"""

from engram.stores.memory.store import MemoryStore

__all__ = ["MemoryStore"]
