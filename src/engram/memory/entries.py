"""The entries part of the facade: store, get, list and delete memories by key.

Validates arguments, assigns ids and timestamps, and hands the entries to the
backend; vectors come from the semantic part, its explicit collaborator.
"""

from __future__ import annotations

import builtins
import operator
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from engram import validation as check
from engram._gc_pause import gc_paused
from engram._time import utcnow
from engram.errors import InvalidInput
from engram.memory.semantic import as_vector
from engram.models import Entry
from engram.search.context import (
    CONTEXT_CHARS,
    MAX_CONTEXT_WINDOW,
    bounded_context,
    windowed_contexts,
)
from engram.stores.base import ENTRY_ORDERS, EntryQuery, VectorItem
from engram.stores.contracts.entries import EntryRows

if TYPE_CHECKING:
    from engram.memory.semantic import Semantic
    from engram.stores.base import Store

MAX_CONTEXT_INPUT = 16 * 1024  # characters; longer is a mistake (a whole document), not a context
# Where the store writes one part of store_many's items while the next is checked (SQLite), the
# first part is small (the store waits for it) and each next one this many times the last: checking
# a part takes about a third of the time writing one does, and each part costs the store a write of
# its own (SQLite: a full-text index segment), so there are few.
FIRST_PART_ITEMS = 2_000
PART_GROWTH = 2
_ITEM_FIELDS = frozenset({"key", "content", "metadata", "namespace", "ttl", "embedding", "context"})


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_random = threading.local()  # per thread: a buffer of os.urandom bytes, as hex, and where it is read


def _new_id() -> str:
    """A random UUID4 as text: ``str(uuid.uuid4())`` (same bits) in a third of the time.

    The bits come from ``os.urandom`` 256 ids at a time (one system call
    each, not one per id: bulk writes take an id per entry).
    """
    local = _random.__dict__
    at = local.get("at", 4096)
    if at >= 4096:
        local["hex"], at = os.urandom(2048).hex(), 0
    local["at"] = at + 32
    h = local["hex"][at : at + 32]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _forget_random() -> None:
    _random.__dict__.clear()  # a forked child must not hand out the ids its parent will


os.register_at_fork(after_in_child=_forget_random)


_set = object.__setattr__
_new_model = Entry.__new__  # bound once: looking it up on the model class goes through pydantic's metaclass
_ENTRY_FIELDS = set(Entry.model_fields)


def _built_entry(fields: dict[str, Any]) -> Entry:
    """What ``Entry.model_construct(**fields)`` builds when every field is given, without
    its loop over fields and defaults: a quarter of the time, paid by every write."""
    entry = _new_model(Entry)
    _set(entry, "__dict__", fields)
    _set(entry, "__pydantic_fields_set__", _ENTRY_FIELDS.copy())
    _set(entry, "__pydantic_extra__", None)
    _set(entry, "__pydantic_private__", None)
    return entry


def _context(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"context must be a string (what surrounds the memory), not {type(value).__name__}")
    if len(value) > MAX_CONTEXT_INPUT:
        raise InvalidInput(
            f"context is {len(value)} characters; give at most {MAX_CONTEXT_INPUT} (only the first "
            f"{CONTEXT_CHARS} are embedded and stored)"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")  # it is stored: a lone surrogate cannot be
        except UnicodeEncodeError as exc:
            raise InvalidInput(
                f"context has an unpaired surrogate at position {exc.start}; it cannot be stored as UTF-8"
            ) from exc
    return value or None


def _overlaps_parts(store: "Store") -> bool:
    """Whether ``store`` writes one part of a batch while the next is checked (see ``put_entry_parts``)."""
    return type(store).put_entry_parts is not EntryRows.put_entry_parts


def _context_window(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CONTEXT_WINDOW:
        raise InvalidInput(
            f"context_window must be a whole number of earlier items from 0 to {MAX_CONTEXT_WINDOW}, got {value!r}"
        )
    return value


class Entries:
    """Memories under ``(namespace, key)`` in ``backend``; contents up to ``max_bytes``, embedded by ``semantic``."""

    def __init__(self, backend: "Store", semantic: "Semantic", *, max_bytes: int) -> None:
        self.backend = backend
        self.semantic = semantic
        self.max_bytes = max_bytes

    def _entry(
        self, key: Any, content: Any, namespace: Any, metadata: Any, ttl: Any, now: datetime, context: str | None = None
    ) -> Entry:
        seconds = None if ttl is None else check.ttl(ttl)
        return _built_entry(
            {
                "id": _new_id(),
                "key": check.name("key", key),
                "namespace": check.name("namespace", namespace),
                "content": check.content(content, self.max_bytes),
                "context": context,
                # None (not given) tells the store to keep an existing entry's metadata.
                "metadata": None if metadata is None else check.metadata(metadata, self.max_bytes),
                "created_at": now,
                "updated_at": now,
                "expires_at": None if seconds is None else now + timedelta(seconds=seconds),
            }
        )

    def store(
        self,
        key: str,
        content: str,
        *,
        namespace: str = "default",
        metadata: dict[str, Any] | None = None,
        ttl: float | None = None,
        embed: bool | None = None,
        embedding: Any = None,
        context: str | None = None,
    ) -> Entry:
        """Store (upsert) one memory under ``(namespace, key)``.

        An existing entry keeps its id and created_at; content and expiry are
        replaced and updated_at moves. Metadata is replaced when given:
        ``metadata=None`` (the default) keeps the existing entry's metadata
        ({} for a new entry), ``metadata={}`` clears it. The context is
        replaced like the content: the new call's, or None when it gives none.
        Changed content or context drops the old embedding; the new one is
        computed before anything is written.

        Args:
            ttl: seconds until the entry expires; None keeps it forever.
            embed: None embeds the content when an embedder is configured;
                False never; True requires an embedder.
            embedding: a precomputed vector (list of floats or numpy array)
                of the store's dimensions, instead of embedding here.
            context: what surrounds this memory (the turns before it, the
                session's date, the document's title), embedded ahead of the
                content so search by meaning finds what the content leaves
                unsaid. Its first :data:`~engram.search.context.CONTEXT_CHARS`
                characters are stored as the entry's ``context`` (the content
                is unchanged), so ``engram reindex`` and import embed it again;
                see :mod:`engram.search.context`.
        Raises:
            InvalidInput: a bad key, namespace, metadata, ttl, context or embedding size.
            ContentTooLarge: content over ``max_content_bytes``.
        """
        now = utcnow()
        own = _context(context)
        entry = self._entry(key, content, namespace, metadata, ttl, now, None if own is None else bounded_context(own))
        if embedding is None and not embed and self.semantic.embedder is None:
            return self.backend.put_entries([entry], now=now)[0]  # nothing to embed: the short way
        given = None if embedding is None else as_vector(embedding)
        vectors = self.semantic.vectors_for([entry], [given], embed)
        stored = self.semantic.put_with_vectors([entry], vectors, now)[0]
        return stored

    def store_many(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        namespace: str = "default",
        embed: bool | None = None,
        context_window: int = 0,
    ) -> int:
        """Store many memories in one transaction; returns how many were stored.

        Each item is a dict with ``key`` and ``content`` and optionally
        ``metadata`` (left out or None keeps an existing entry's metadata, as
        in :meth:`store`), ``namespace`` (default: the ``namespace`` argument),
        ``ttl``, ``embedding`` (a precomputed vector) and ``context`` (as in
        :meth:`store`). Items without an embedding are embedded in batches
        when an embedder is configured (``embed`` as in :meth:`store`).
        Nothing is stored when any item is invalid.

        Args:
            context_window: embed each item with the contents of up to this
                many items before it (of this call and namespace) as context,
                after its own: for items that are a sequence, such as the
                turns of a conversation in order or a document's chunks.
                Each entry stores the context it was embedded with.
        """
        now = utcnow()
        window = _context_window(context_window)
        if not window and not embed and self.semantic.embedder is None and _overlaps_parts(self.backend):
            return self._store_parts(items, namespace, now)
        with gc_paused():  # not while embedding: that may take minutes
            entries, given, own = self._entries_of(items, namespace, now)
        if entries:
            if window or any(own):
                contexts = windowed_contexts([e.namespace for e in entries], [e.content for e in entries], own, window)
                for entry, bounded in zip(entries, contexts):
                    entry.__dict__["context"] = bounded  # built here, not yet shared: set in place
            # Nothing to embed and no vector given (checked at C speed; `is`, since vectors may be arrays).
            nothing = not embed and self.semantic.embedder is None and all(map(operator.is_, given, repeat(None)))
            vectors = [] if nothing else self.semantic.vectors_for(entries, given, embed)
            with gc_paused():
                self.semantic.put_with_vectors(entries, vectors, now)
        return len(entries)

    def _store_parts(self, items: Iterable[Mapping[str, Any]], namespace: str, now: datetime) -> int:
        """``store_many`` with nothing to embed, on a store that writes a part while the next
        is checked (``Store.put_entry_parts``): one transaction, so a bad item anywhere
        still stores nothing."""
        with_vectors: builtins.list[tuple[builtins.list[Entry], builtins.list[Any]]] = []

        def parts() -> Iterator[builtins.list[Entry]]:
            # Runs while the store writes the part before: it must not touch the store.
            pending = iter(items)
            start, size = 0, FIRST_PART_ITEMS
            while chunk := builtins.list(islice(pending, size)):
                entries, given, own = self._entries_of(chunk, namespace, now, start)
                if any(own):
                    for entry, context in zip(entries, own):
                        entry.__dict__["context"] = bounded_context(context)  # not yet shared: set in place
                if not all(map(operator.is_, given, repeat(None))):
                    with_vectors.append((entries, given))
                start, size = start + len(chunk), size * PART_GROWTH
                yield entries

        with gc_paused(), self.backend.transaction():
            count = self.backend.put_entry_parts(parts(), now=now)
            # The vectors given with items, after their entries (checking them may read the store).
            given: builtins.list[VectorItem] = []
            for entries, vectors in with_vectors:
                given += self.semantic.vectors_for(entries, vectors, None)
            self.semantic.attach(given)
        return count

    def _entries_of(
        self, items: Iterable[Mapping[str, Any]], namespace: str, now: datetime, start: int = 0
    ) -> tuple[builtins.list[Entry], builtins.list[Any], builtins.list[str | None]]:
        """The checked entries of ``store_many`` items (numbered from ``start`` in errors), the
        vectors and the contexts given with them."""
        entries = []
        given: builtins.list[Any] = []
        own: builtins.list[str | None] = []
        new_entry = self._entry
        for i, item in enumerate(items, start):
            # type() first: the Mapping ABC check costs more than the rest of the loop.
            if type(item) is not dict and not isinstance(item, Mapping):
                raise InvalidInput(f"item {i} must be a dict with key and content, not {type(item).__name__}")
            if not _ITEM_FIELDS.issuperset(item):
                unknown = set(item) - _ITEM_FIELDS
                raise InvalidInput(
                    f"item {i} has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"allowed: {', '.join(sorted(_ITEM_FIELDS))}"
                )
            if "key" not in item or "content" not in item:
                raise InvalidInput(f"item {i} has no {'key' if 'key' not in item else 'content'}")
            get = item.get
            try:
                entries.append(
                    new_entry(item["key"], item["content"], get("namespace", namespace), get("metadata"), get("ttl"), now)
                )
                embedding = get("embedding")
                given.append(None if embedding is None else as_vector(embedding))
                own.append(_context(get("context")))
            except InvalidInput as exc:
                raise type(exc)(f"item {i}: {exc}") from None
        return entries, given, own

    def get(self, key: str, *, namespace: str = "default") -> Entry | None:
        """The live entry under ``(namespace, key)``, or None."""
        return self.backend.get_entry(check.name("namespace", namespace), check.name("key", key), now=utcnow())

    def list(
        self,
        *,
        namespace: str | None = None,
        limit: int = 20,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
        key_prefix: str | None = None,
        order: str = "updated_desc",
    ) -> builtins.list[Entry]:
        """Live entries; ``metadata={"k": v}`` filters by equality.

        Args:
            order: ``"updated_desc"`` (newest updated first, the default) or
                ``"updated_asc"`` (oldest first: the same listing reversed).
        Raises:
            InvalidInput: a bad namespace, limit, offset, metadata filter, key_prefix or order.
        """
        query = EntryQuery(
            namespace=None if namespace is None else check.name("namespace", namespace),
            limit=check.limit(limit),
            offset=check.offset(offset),
            metadata=check.metadata_filter(metadata),
            key_prefix=None if key_prefix is None else check.name("key_prefix", key_prefix),
            order=check.choice("order", order, ENTRY_ORDERS),
        )
        return self.backend.list_entries(query, now=utcnow())

    def delete(self, key: str, *, namespace: str = "default") -> bool:
        """Delete one entry; True when it existed."""
        return self.backend.delete_entry(check.name("namespace", namespace), check.name("key", key), now=utcnow())

    def delete_namespace(self, namespace: str) -> int:
        """Delete every entry of ``namespace``; returns how many were deleted."""
        return self.backend.delete_namespace(check.name("namespace", namespace), now=utcnow())

    def namespaces(self) -> builtins.list[str]:
        """Namespaces holding at least one live entry, sorted."""
        return self.backend.namespaces(now=utcnow())

    def namespace_counts(self) -> dict[str, int]:
        """Live entries per namespace (expired ones excluded), sorted by namespace.

        Holds exactly the namespaces :meth:`namespaces` lists; one query, not one per namespace.
        """
        return self.backend.namespace_counts(now=utcnow())
