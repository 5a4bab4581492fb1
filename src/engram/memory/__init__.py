"""The facade: ``Memory`` composed of parts (see :mod:`engram.memory.facade`), and ``AsyncMemory``."""

from engram.memory.facade import AsyncMemory, Memory, Parts, open_store

__all__ = ["AsyncMemory", "Memory", "Parts", "open_store"]
