"""What every family contract of a backend shares: its URL, its capabilities, its counts and
the errors for what it does not hold.

The families (``entries``, ``sessions``, ``conversation``, ``vectors``) each subclass
:class:`BackendRoot`, and ``engram.stores.base.Store`` composes them, so a family's
defaults and the code of a backend's family module can use these members.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import ClassVar

from engram.errors import Unsupported
from engram.stores.capabilities import CONVERSATION
from engram.stores.queries import Counts


class BackendRoot(ABC):
    """The members every family of a backend may rely on."""

    capabilities: ClassVar[frozenset[str]] = frozenset()
    url: str

    @abstractmethod
    def counts(self, *, now: datetime) -> Counts:
        """How many records of each kind the store holds (and its size where known)."""

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(
            f"the {type(self).__name__} backend ({self.url}) does not support {what} "
            f"(it lacks the {CONVERSATION!r} capability)"
        )

    def _no_vectors(self, what: str) -> Unsupported:
        return Unsupported(
            f"the {self.url.split(':', 1)[0]}:// backend cannot {what}: it does not support vector search "
            "(use search mode fts, or a backend with the vector capability such as sqlite:// or memory://)"
        )
