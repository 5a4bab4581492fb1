"""The vector rows family (capabilities VECTOR and MESSAGE_VECTOR): embeddings of entries and
messages, stored and searched by the one vector engine (``engram.search.vector``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from engram.models import Entry, Message
from engram.search.query import Node
from engram.stores.capabilities import VECTOR
from engram.stores.contracts.root import BackendRoot
from engram.stores.queries import MessageVectorItem, MetadataFilter, VectorItem, VectorModel

# Where vector search runs (``vector_search_path``, ``engram stats``).
IN_PROCESS = "in-process"  # engram's own index in each process
PGVECTOR = "pgvector"  # in PostgreSQL


class VectorRows(BackendRoot):
    """Vectors in and out.

    Not abstract, so a backend without vector support keeps working: these
    defaults report "nothing stored" for reads and refuse writes and searches.
    """

    def vector_search_path(self) -> str | None:
        """Where vector search runs: ``"in-process"`` (engram's own index in each process),
        ``"pgvector"`` (in the database), or None (this backend has no vector search)."""
        return IN_PROCESS if VECTOR in self.capabilities else None

    def vector_model(self) -> VectorModel | None:
        """The model of the stored vectors, or None when none was recorded."""
        return None

    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        """Attach vectors to entries whose content is unchanged; returns how many were attached.

        Records ``model`` when the store has none, in the same transaction.

        Raises:
            ConfigError: the store holds vectors of another model (``engram reindex`` fixes it).
        """
        raise self._no_vectors("store embeddings")

    def search_vector(
        self, vector: Any, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        """Live entries nearest to ``vector`` by cosine similarity, best first."""
        raise self._no_vectors("search by vector")

    def count_vectors(self, namespace: str | None) -> int:
        """How many entries of ``namespace`` (None: all) have a vector."""
        return 0

    def get_vectors(self, idents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """The vectors of those ``(namespace, key)`` entries that have one."""
        return {}

    def vectors_by_hash(self, digests: Sequence[bytes]) -> dict[bytes, Any]:
        """Stored vectors by the content hash they embed (a cache across processes)."""
        return {}

    def entries_without_vectors(self, namespace: str | None, *, batch_size: int = 256) -> Iterator[list[Entry]]:
        """Batches of entries lacking a vector (for reindex)."""
        raise self._no_vectors("store embeddings")

    def clear_vectors(self) -> int:
        """Drop every vector and the recorded model (before a reindex with another model)."""
        raise self._no_vectors("store embeddings")

    # -- message vectors (capability MESSAGE_VECTOR)
    # One model per store: message vectors are recorded under the same
    # ``vector_model`` as entry vectors, and ``clear_vectors`` drops both.
    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        """Attach vectors to messages whose content is unchanged; returns how many were attached.

        Raises:
            ConfigError: the store holds vectors of another model.
        """
        raise self._no_vectors("store message embeddings")

    def get_message_vectors(self, message_ids: Sequence[str]) -> dict[str, Any]:
        """The vectors of those messages that have one, by message id (for export and copy)."""
        return {}

    def search_message_vectors(
        self, vector: Any, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        """Messages nearest to ``vector`` by cosine similarity, best first, within the scope."""
        raise self._no_vectors("search messages by vector")

    def count_message_vectors(self) -> int:
        """How many messages have a vector."""
        return 0

    def messages_without_vectors(self, *, batch_size: int = 256) -> Iterator[list[Message]]:
        """Batches of messages with content but no vector (for reindex)."""
        raise self._no_vectors("store message embeddings")

    def count_message_text_matches(
        self, query: Node, *, session_id: str | None, user_id: str | None, cap: int
    ) -> int | None:
        """Like ``count_text_matches``, over messages in the scope; None when it cannot count cheaply."""
        return None
