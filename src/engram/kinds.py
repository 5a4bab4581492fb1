"""The one table of record kinds: what a store holds, declared once.

Export and import (``engram.transfer``), copy (``engram.copy``), embeddings in
transfers (``engram._transfer_vectors``), the JSON backend's files
(``engram.stores.jsonfiles``) and the per-kind counts of ``Memory.stats``
read this table instead of keeping their own lists of kinds, so a kind added
here is carried everywhere or fails a test (``tests/test_kinds.py`` iterates
the table and round-trips one record of each kind through export, import and
copy).

Each row says:

- ``name``: the tag of its lines in an export file (``{"kind": "session", ...}``).
- ``model``: the class of its records (a pydantic model, or a row dataclass for vectors).
- ``family``: which part of the store holds it (entries, sessions, conversation, vectors).
- ``id_fields``: the fields that identify a record; an upsert by them changes nothing twice.
- ``order``: the fields its records are written out in (JSON files); empty: the store's own order.
- ``file``: the JSON backend's file (``<file>.json``).
- ``counts``: the fields of ``Counts`` (and of ``Stats``, by the same names) that count it;
  copy checks their sum. Vectors are counted by their own store methods.
- ``iterate`` / ``put`` / ``get``: the ``Store`` methods that list every record (for vectors:
  look them up by their carriers' ids), write records (``put_many``: a batch a call) and
  fetch one by id. ``paged``: ``iterate`` takes a ``batch_size``. ``keeps_existing``: an
  import inserts a record only when its id is not there (a checkpoint or run moves on;
  re-importing an old export must not undo that); other kinds are upserted.
- ``writes``: the other ``Store`` methods that change records of this kind (deletes, prunes,
  state moves); the JSON backend rewrites the kind's file after each of them and after ``put``.
- ``capability``: the capability a backend declares to hold it (None: every backend).
- ``carrier``: for vectors, the kind whose export lines carry them as ``"embedding"``;
  such a kind has no lines of its own.
- ``optional``: fields added to the kind's model after its files were first written (format
  version 1); export lines and the JSON backend's files leave one out while it is None, so a
  record without it is written byte for byte as before and still reads in an older engram.
- ``layer``: which storage layer of a ``Memory`` holds it: the database (``memory.backend``,
  a ``Store``; every kind but one) or the blob store (``memory.blobs.records``). ``holder``
  gives the object whose ``iterate`` / ``put`` / ``get`` methods the row names, so export,
  import and copy reach blobs the way they reach every other kind. Kinds of the blob store
  are not the JSON backend's files and not counted by ``Counts``.

The rows are in dependency order: sessions before the tasks, messages and runs
that refer to them, messages before the summaries that point at them. Export
writes lines in this order and copy moves kinds in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engram.models import Blob, Checkpoint, Entry, Message, Profile, Run, Session, Summary, Task
from engram.stores.base import CONVERSATION, MESSAGE_VECTOR, VECTOR, MessageVectorItem, VectorItem

ENTRIES, SESSIONS, CONVERSATION_FAMILY, VECTORS, BLOBS = "entries", "sessions", "conversation", "vectors", "blobs"
DATABASE_LAYER, BLOB_LAYER = "database", "blob_store"


@dataclass(frozen=True)
class RecordKind:
    """One kind of record; see the module docstring for what each field means."""

    name: str
    model: type[Any]
    family: str
    id_fields: tuple[str, ...]
    order: tuple[str, ...]
    file: str
    counts: tuple[str, ...]
    iterate: str
    put: str
    get: str | None = None
    put_many: bool = False
    paged: bool = False
    keeps_existing: bool = False
    writes: tuple[str, ...] = ()
    capability: str | None = None
    carrier: str | None = None
    layer: str = DATABASE_LAYER
    optional: tuple[str, ...] = ()

    @property
    def identity(self) -> Callable[[Any], Any]:
        """A record -> its id: the one id field's value, or a tuple of them."""
        fields = self.id_fields
        if len(fields) == 1:
            return lambda record: getattr(record, fields[0])
        return lambda record: tuple(getattr(record, f) for f in fields)

    def sort_key(self, record: Any) -> tuple[Any, ...]:
        """Where ``record`` goes among those written out (``order``)."""
        return tuple(getattr(record, f) for f in self.order)

    def written(self, record: Any) -> dict[str, Any]:
        """``record`` as export lines and the JSON backend's files hold it: its fields, JSON-ready,
        less the ``optional`` ones that are None."""
        data = record.model_dump(mode="json")
        for name in self.optional:
            if data.get(name, 0) is None:
                del data[name]
        return data

    def holder(self, memory: Any) -> Any:
        """The object of ``memory`` that holds this kind's records (and has the row's methods)."""
        return memory.backend if self.layer == DATABASE_LAYER else memory.blobs.records

    def held_by(self, store: Any) -> bool:
        """Whether ``store``'s backend holds records of this kind at all."""
        return self.capability is None or self.capability in store.capabilities


KINDS: tuple[RecordKind, ...] = (
    RecordKind("session", Session, SESSIONS, ("id",), ("started_at", "id"), "sessions", ("sessions",),
               "iter_sessions", "put_session", "get_session", paged=True, writes=("prune_conversation",)),
    RecordKind("task", Task, SESSIONS, ("id",), ("created_at", "id"), "tasks", ("tasks",),
               "iter_tasks", "put_task", "get_task", paged=True, writes=("prune_conversation",)),
    RecordKind("entry", Entry, ENTRIES, ("namespace", "key"), (), "entries", ("entries", "expired_entries"),
               "iter_entries", "put_entries", put_many=True, paged=True,
               writes=("put_entry_rows", "delete_entry", "delete_namespace", "prune_expired", "prune_entries"),
               optional=("context",)),  # issue 15
    RecordKind("blob", Blob, BLOBS, ("id",), ("created_at", "id"), "blobs", (),
               "iter_blobs", "put_blob", "get_blob", paged=True, layer=BLOB_LAYER),
    RecordKind("message", Message, CONVERSATION_FAMILY, ("id",), ("seq",), "messages", ("messages",),
               "iter_messages", "put_messages", "get_message", put_many=True, paged=True, capability=CONVERSATION,
               writes=("append_messages", "delete_messages", "prune_conversation")),
    RecordKind("summary", Summary, CONVERSATION_FAMILY, ("session_id",), ("session_id",), "summaries",
               ("summaries",), "iter_summaries", "put_summary", capability=CONVERSATION,
               writes=("delete_messages", "prune_conversation")),
    RecordKind("profile", Profile, CONVERSATION_FAMILY, ("user_id",), ("user_id",), "profiles", ("profiles",),
               "iter_profiles", "put_profile", capability=CONVERSATION, writes=("delete_profile",)),
    RecordKind("checkpoint", Checkpoint, CONVERSATION_FAMILY, ("id",), ("created_at", "id"), "checkpoints",
               ("checkpoints",), "iter_checkpoints", "put_checkpoint", "get_checkpoint", keeps_existing=True,
               capability=CONVERSATION, writes=("resume_checkpoint", "delete_checkpoint", "prune_conversation")),
    RecordKind("run", Run, CONVERSATION_FAMILY, ("id",), ("created_at", "id"), "runs", ("runs",),
               "iter_runs", "put_run", "get_run", keeps_existing=True, capability=CONVERSATION,
               writes=("move_run", "prune_conversation")),
    RecordKind("entry_vector", VectorItem, VECTORS, ("namespace", "key"), (), "vectors", (),
               "get_vectors", "put_vectors", put_many=True, capability=VECTOR, carrier="entry",
               writes=("clear_vectors", "put_message_vectors")),  # vectors.json records the one model
    RecordKind("message_vector", MessageVectorItem, VECTORS, ("message_id",), (), "message_vectors", (),
               "get_message_vectors", "put_message_vectors", put_many=True, capability=MESSAGE_VECTOR,
               carrier="message", writes=("clear_vectors",)),
)  # fmt: skip

BY_NAME: dict[str, RecordKind] = {kind.name: kind for kind in KINDS}
# Kinds with lines of their own in an export (vectors ride on their carrier's lines).
LINE_KINDS: tuple[RecordKind, ...] = tuple(kind for kind in KINDS if kind.carrier is None)
# Kinds a database ``Store`` holds (the others live in the blob store).
STORE_KINDS: tuple[RecordKind, ...] = tuple(kind for kind in KINDS if kind.layer == DATABASE_LAYER)
# Kinds every backend holds; an export's counts always name these.
BASE_KINDS: tuple[RecordKind, ...] = tuple(
    kind for kind in LINE_KINDS if kind.capability is None and kind.layer == DATABASE_LAYER
)
# The vector kind carried by each kind's lines.
VECTORS_OF: dict[str, RecordKind] = {kind.carrier: kind for kind in KINDS if kind.carrier is not None}
# Kinds counted by ``Counts`` / ``Stats`` (vectors are counted by their own store methods).
COUNTED: tuple[RecordKind, ...] = tuple(kind for kind in KINDS if kind.counts)


def by_file(file: str) -> RecordKind:
    """The kind stored in the JSON backend's ``<file>.json``."""
    for kind in STORE_KINDS:
        if kind.file == file:
            return kind
    raise KeyError(file)


def _changed_by() -> dict[str, tuple[RecordKind, ...]]:
    changed: dict[str, tuple[RecordKind, ...]] = {}
    for kind in STORE_KINDS:  # blob-store kinds are written by the blob store, not a Store
        for method in (kind.put, *kind.writes):
            changed[method] = (*changed.get(method, ()), kind)
    return changed


# ``Store`` method -> the kinds whose records it changes (its ``put`` and ``writes``), in table order.
CHANGED_BY: dict[str, tuple[RecordKind, ...]] = _changed_by()
