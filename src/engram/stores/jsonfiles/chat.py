"""Conversation primitives of the JSON-files backend (``json://``).

A mixin of :class:`engram.stores.jsonfiles.store.JsonStore`: the work is done by its
in-memory working copy (a ``MemoryStore``, so the semantics are those of
``memory://``), and each write saves the files of the kinds it changed
(``messages.json``, ``summaries.json``, ``profiles.json``, ``checkpoints.json``,
and ``sessions.json`` / ``tasks.json`` when a prune removes sessions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from engram import kinds as record_kinds
from engram.models import Checkpoint, Message, Profile, Run, Summary
from engram.search.query import Node
from engram.stores.base import MessageQuery, PruneCounts, PrunePlan, RunQuery

# The files of the conversation kinds (engram.kinds), which are also the names of
# MemoryStore._restore_conversation's arguments.
CONVERSATION_FILES = tuple(
    kind.file for kind in record_kinds.LINE_KINDS if kind.family == record_kinds.CONVERSATION_FAMILY
)


class JsonConversation:
    """Implements the CONVERSATION primitives of ``Store`` for ``JsonStore``."""

    # Provided by JsonStore.
    _writing: Any  # (*kinds) -> context manager yielding the MemoryStore
    _reading: Any  # () -> the MemoryStore, fresh from the files

    def _write(self, *kinds: str) -> AbstractContextManager[Any]:
        return self._writing(*kinds)

    def append_messages(self, messages: Sequence[Message]) -> list[Message]:
        with self._write("messages") as mem:
            return mem.append_messages(messages)

    def put_messages(self, messages: Sequence[Message]) -> list[Message]:
        with self._write("messages") as mem:
            return mem.put_messages(messages)

    def get_message(self, message_id: str) -> Message | None:
        return self._reading().get_message(message_id)

    def list_messages(self, query: MessageQuery) -> list[Message]:
        return self._reading().list_messages(query)

    def count_messages(self, session_id: str, *, after_seq: int = 0) -> int:
        return self._reading().count_messages(session_id, after_seq=after_seq)

    def delete_messages(self, session_id: str) -> int:
        with self._write("messages", "summaries") as mem:
            return mem.delete_messages(session_id)

    def search_messages(
        self, query: Node, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        return self._reading().search_messages(query, session_id=session_id, user_id=user_id, limit=limit)

    def iter_messages(self, *, batch_size: int = 1000) -> Iterator[Message]:
        return self._reading().iter_messages(batch_size=batch_size)

    def put_summary(self, summary: Summary) -> None:
        with self._write("summaries") as mem:
            mem.put_summary(summary)

    def get_summary(self, session_id: str) -> Summary | None:
        return self._reading().get_summary(session_id)

    def iter_summaries(self) -> Iterator[Summary]:
        return self._reading().iter_summaries()

    def put_profile(self, profile: Profile) -> None:
        with self._write("profiles") as mem:
            mem.put_profile(profile)

    def get_profile(self, user_id: str) -> Profile | None:
        return self._reading().get_profile(user_id)

    def delete_profile(self, user_id: str) -> bool:
        with self._write("profiles") as mem:
            return mem.delete_profile(user_id)

    def iter_profiles(self) -> Iterator[Profile]:
        return self._reading().iter_profiles()

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._write("checkpoints") as mem:
            mem.put_checkpoint(checkpoint)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return self._reading().get_checkpoint(checkpoint_id)

    def list_checkpoints(self, session_id: str, *, status: str | None = None) -> list[Checkpoint]:
        return self._reading().list_checkpoints(session_id, status=status)

    def resume_checkpoint(self, checkpoint_id: str, *, now: datetime) -> Checkpoint:
        # Under the cross-process lock, after reloading: two processes cannot both resume it.
        with self._write("checkpoints") as mem:
            return mem.resume_checkpoint(checkpoint_id, now=now)

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._write("checkpoints") as mem:
            return mem.delete_checkpoint(checkpoint_id)

    def iter_checkpoints(self) -> Iterator[Checkpoint]:
        return self._reading().iter_checkpoints()

    def prune_conversation(self, plan: PrunePlan) -> PruneCounts:
        if plan.dry_run:
            return self._reading().prune_conversation(plan)
        with self._write("messages", "summaries", "checkpoints", "runs", "tasks", "sessions") as mem:
            return mem.prune_conversation(plan)

    def put_run(self, run: Run) -> None:
        with self._write("runs") as mem:
            mem.put_run(run)

    def get_run(self, run_id: str) -> Run | None:
        return self._reading().get_run(run_id)

    def list_runs(self, query: RunQuery) -> list[Run]:
        return self._reading().list_runs(query)

    def move_run(
        self, run_id: str, *, from_statuses: Sequence[str], status: str, checkpoint_id: str | None, now: datetime
    ) -> Run:
        # Under the cross-process lock, after reloading: two processes cannot both move it.
        with self._write("runs") as mem:
            return mem.move_run(run_id, from_statuses=from_statuses, status=status, checkpoint_id=checkpoint_id, now=now)

    def prune_entries(self, *, now: datetime, namespace: str | None = None, dry_run: bool = False) -> int:
        if dry_run:
            return self._reading().prune_entries(now=now, namespace=namespace, dry_run=True)
        with self._write("entries") as mem:
            return mem.prune_entries(now=now, namespace=namespace)
