"""The entries family: key/value records in namespaces, with expiry and full-text search."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from engram._time import from_iso, to_iso, utcnow
from engram.models import Entry
from engram.search.query import Node
from engram.stores.contracts.root import BackendRoot
from engram.stores.queries import EntryQuery, MetadataFilter


class EntryRow(NamedTuple):
    """An entry whose timestamps are already ``to_iso`` text, as ``engram import`` reads them.

    Formatting a datetime back to text costs about what parsing its whole
    export line does; a store that keeps text takes these as they are.
    """

    id: str
    key: str
    namespace: str
    content: str
    context: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    expires_at: str | None

    @classmethod
    def of(cls, entry: Entry) -> "EntryRow":
        """``entry`` with its timestamps as text."""
        return cls(
            entry.id, entry.key, entry.namespace, entry.content, entry.context, entry.metadata,
            to_iso(entry.created_at), to_iso(entry.updated_at), to_iso(entry.expires_at),  # type: ignore[arg-type]
        )  # fmt: skip

    def entry(self) -> Entry:
        """The same entry as the model every other call takes."""
        return Entry.model_construct(
            id=self.id, key=self.key, namespace=self.namespace, content=self.content, context=self.context,
            metadata=self.metadata,
            created_at=from_iso(self.created_at), updated_at=from_iso(self.updated_at),
            expires_at=from_iso(self.expires_at),
        )  # fmt: skip


class EntryRows(BackendRoot):
    """Entries in and out; every backend implements the abstract ones."""

    @abstractmethod
    def put_entries(self, entries: Sequence[Entry], *, now: datetime) -> list[Entry]:
        """Upsert entries on (namespace, key) in one transaction.

        An existing live entry keeps its id and created_at; an expired one is
        replaced as if new. An entry whose ``metadata`` is None was stored
        without metadata: it keeps the live entry's metadata ({} when new or
        expired), while ``{}`` clears it. Returns the entries as stored, in
        input order (with the metadata they ended up with).
        """

    def put_entry_parts(self, parts: Iterable[Sequence[Entry]], *, now: datetime) -> int:
        """``put_entries`` of the entries of every part, as one batch; returns how many.

        Taking the next part may run the caller's work on it (``store_many``
        checks its items part by part). The default takes every part first,
        then writes once; a store that can do that work meanwhile overrides
        it (SQLite takes the next part while it indexes this one, all in one
        transaction).
        """
        entries = [e for part in parts for e in part]
        if entries:
            self.put_entries(entries, now=now)
        return len(entries)

    def put_entry_rows(self, rows: Sequence[EntryRow]) -> None:
        """``put_entries`` of ``rows`` (the upsert rules are the same), returning nothing.

        A store that keeps timestamps as text overrides it to write the text
        as given (SQLite: its parameters for 100k rows in a quarter of the time).
        """
        self.put_entries([row.entry() for row in rows], now=utcnow())

    @abstractmethod
    def get_entry(self, namespace: str, key: str, *, now: datetime) -> Entry | None:
        """The live entry, or None when absent or expired."""

    @abstractmethod
    def list_entries(self, query: EntryQuery, *, now: datetime) -> list[Entry]:
        """Live entries matching ``query`` in ``query.order`` (one of ``ENTRY_ORDERS``)."""

    @abstractmethod
    def delete_entry(self, namespace: str, key: str, *, now: datetime) -> bool:
        """Delete one entry; True when it existed and was live."""

    @abstractmethod
    def delete_namespace(self, namespace: str, *, now: datetime) -> int:
        """Delete every entry of a namespace; returns how many live ones went."""

    @abstractmethod
    def namespaces(self, *, now: datetime) -> list[str]:
        """Namespaces that hold at least one live entry, sorted."""

    @abstractmethod
    def namespace_counts(self, *, now: datetime) -> dict[str, int]:
        """Live entries per namespace, for namespaces holding at least one, sorted by name.

        One query (a GROUP BY on SQL backends), not a probe per namespace.
        """

    @abstractmethod
    def search_text(
        self,
        query: Node,
        *,
        namespace: str | None,
        metadata: MetadataFilter,
        limit: int,
        now: datetime,
    ) -> list[tuple[Entry, float]]:
        """BM25 full-text search over key and content; higher score is better."""

    def count_text_matches(self, query: Node, *, namespace: str | None, cap: int) -> int | None:
        """How many entries (expired ones included) match ``query``, counting no further than ``cap``.

        None when the backend cannot count cheaply (the default). Hybrid search
        uses it to keep the OR of a question's words from scoring a huge set.
        """
        return None

    @abstractmethod
    def prune_expired(self, *, now: datetime) -> int:
        """Remove expired entries; returns how many."""

    @abstractmethod
    def iter_entries(self, *, batch_size: int = 1000) -> Iterator[Entry]:
        """Every stored entry, expired ones included (for export and copy)."""

    def prune_entries(self, *, now: datetime, namespace: str | None = None, dry_run: bool = False) -> int:
        """Remove (or count) expired entries, optionally of one namespace only.

        The default composes ``prune_expired`` and ``counts``; backends override
        it to support a namespace.
        """
        if namespace is None:
            return self.counts(now=now).expired_entries if dry_run else self.prune_expired(now=now)
        raise self._unsupported("pruning the expired entries of one namespace")
