"""engram: persistent memory and storage for AI agents.

    import engram
    with engram.open("sqlite:///agent.db") as memory:
        memory.store("favourite-colour", "The user likes teal", namespace="user:42")
        print(memory.search("colour", namespace="user:42").results[0].entry.content)
"""

from __future__ import annotations

from engram.config import Settings, load_settings
from engram.errors import (
    BackendError,
    ConfigError,
    Conflict,
    ContentTooLarge,
    EngramError,
    InvalidInput,
    MissingDependency,
    NotFound,
    QuerySyntaxError,
)
from engram.memory import AsyncMemory, Memory
from engram.models import Entry, PruneReport, SearchHit, SearchResult, Session, Stats, Task

__version__ = "0.1.0"


def open(url: str | None = None, *, settings: Settings | None = None) -> Memory:  # noqa: A001 - the documented name
    """Open a :class:`Memory`; with no URL, ``ENGRAM_DATABASE_URL`` or the default SQLite file."""
    return Memory(url, settings=settings)


__all__ = [
    "AsyncMemory",
    "BackendError",
    "ConfigError",
    "Conflict",
    "ContentTooLarge",
    "EngramError",
    "Entry",
    "InvalidInput",
    "Memory",
    "MissingDependency",
    "NotFound",
    "PruneReport",
    "QuerySyntaxError",
    "SearchHit",
    "SearchResult",
    "Session",
    "Settings",
    "Stats",
    "Task",
    "__version__",
    "load_settings",
    "open",
]
