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
    LLMError,
    LLMOutputError,
    MissingDependency,
    NotFound,
    QuerySyntaxError,
    Unsupported,
)
from engram.memory import AsyncMemory, Memory
from engram.models import (
    Attachment,
    BlobRef,
    BlobStats,
    Checkpoint,
    Entry,
    Message,
    MessageHit,
    MessageSearchResult,
    Profile,
    PruneReport,
    SearchHit,
    SearchResult,
    Session,
    Stats,
    Summary,
    Task,
    Trait,
)
from engram.conversation import AsyncConversationMemory, ConversationContext, ConversationMemory, TurnResult
from engram.llm.client import LLMClient

__version__ = "0.1.0"


def open(url: str | None = None, *, settings: Settings | None = None) -> Memory:  # noqa: A001 - the documented name
    """Open a :class:`Memory`; with no URL, ``ENGRAM_DATABASE_URL`` or the default SQLite file."""
    return Memory(url, settings=settings)


__all__ = [
    "AsyncConversationMemory",
    "AsyncMemory",
    "Attachment",
    "BackendError",
    "BlobRef",
    "BlobStats",
    "Checkpoint",
    "ConfigError",
    "Conflict",
    "ContentTooLarge",
    "ConversationContext",
    "ConversationMemory",
    "EngramError",
    "Entry",
    "InvalidInput",
    "LLMClient",
    "LLMError",
    "LLMOutputError",
    "Memory",
    "Message",
    "MessageHit",
    "MessageSearchResult",
    "MissingDependency",
    "NotFound",
    "Profile",
    "PruneReport",
    "QuerySyntaxError",
    "SearchHit",
    "SearchResult",
    "Session",
    "Settings",
    "Stats",
    "Summary",
    "Task",
    "Trait",
    "TurnResult",
    "Unsupported",
    "__version__",
    "load_settings",
    "open",
]
