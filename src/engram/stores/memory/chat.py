"""Conversation primitives of the in-process backend (``memory://``).

A mixin of :class:`engram.stores.memory.store.MemoryStore`, sharing its lock and its
session and task dictionaries. Message search scores with the same BM25 as
FTS5 (``engram.search.bm25``), over the message content.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from threading import RLock
from typing import Any

from engram._time import to_iso
from engram.errors import Conflict, NotFound
from engram.models import Checkpoint, Message, Profile, Run, Session, Summary, Task
from engram.search.bm25 import AnalyzedText, CompiledQuery
from engram.search.query import Node
from engram.stores.base import MessageQuery, PruneCounts, PrunePlan, RunQuery, run_conflict

END_STATUSES = ("ended", "error")


@dataclass
class _ChatState:
    by_session: dict[str, list[Message]] = field(default_factory=dict)  # each list in seq order
    by_id: dict[str, Message] = field(default_factory=dict)
    analyzed: dict[str, AnalyzedText] = field(default_factory=dict)  # message id -> content tokens
    last_seq: int = 0  # never decreases, so seq only grows
    summaries: dict[str, Summary] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)


class MemoryConversation:
    """Implements the CONVERSATION primitives of ``Store`` in dictionaries."""

    # Provided by MemoryStore.
    _lock: RLock
    _sessions: dict[str, Session]
    _tasks: dict[str, Task]

    @property
    def _chat(self) -> _ChatState:
        state = self.__dict__.get("_chat_state")
        if state is None:
            with self._lock:
                state = self.__dict__.setdefault("_chat_state", _ChatState())
        return state

    def _require_sessions(self, session_ids: Sequence[str]) -> None:
        missing = sorted({s for s in session_ids if s not in self._sessions})
        if missing:
            raise NotFound(f"session {', '.join(missing)} does not exist")

    # -- messages --------------------------------------------------------------
    def append_messages(self, messages: Sequence[Message]) -> list[Message]:
        chat = self._chat
        with self._lock:
            self._require_sessions([m.session_id for m in messages])
            if any(m.id in chat.by_id for m in messages) or len({m.id for m in messages}) < len(messages):
                raise Conflict("storing messages violates a constraint: a message id is already taken")
            stored = []
            for m in messages:
                chat.last_seq += 1
                m = m.model_copy(update={"seq": chat.last_seq})
                chat.by_session.setdefault(m.session_id, []).append(m)
                chat.by_id[m.id] = m
                chat.analyzed[m.id] = AnalyzedText.of(m.content)
                stored.append(m)
        return stored

    def put_messages(self, messages: Sequence[Message]) -> list[Message]:
        chat = self._chat
        with self._lock:
            self._require_sessions([m.session_id for m in messages if m.id not in chat.by_id])
            stored = []
            for m in messages:
                if m.id not in chat.by_id:
                    chat.last_seq = m.seq if m.seq > chat.last_seq else chat.last_seq + 1
                    m = m.model_copy(update={"seq": chat.last_seq})
                    chat.by_session.setdefault(m.session_id, []).append(m)
                    chat.by_id[m.id] = m
                    chat.analyzed[m.id] = AnalyzedText.of(m.content)
                stored.append(chat.by_id[m.id])
        return stored

    def get_message(self, message_id: str) -> Message | None:
        return self._chat.by_id.get(message_id)

    def list_messages(self, query: MessageQuery) -> list[Message]:
        with self._lock:
            found = [
                m
                for m in self._chat.by_session.get(query.session_id, ())
                if (query.after_seq is None or m.seq > query.after_seq)
                and (query.before_seq is None or m.seq < query.before_seq)
                and (query.after is None or m.created_at > query.after)
                and (query.before is None or m.created_at < query.before)
            ]
        return found if query.limit is None else found[-query.limit :] if query.limit else []

    def count_messages(self, session_id: str, *, after_seq: int = 0) -> int:
        with self._lock:
            return sum(1 for m in self._chat.by_session.get(session_id, ()) if m.seq > after_seq)

    def _drop_messages(self, doomed: Sequence[Message]) -> None:
        chat = self._chat
        ids = {m.id for m in doomed}
        for session_id in {m.session_id for m in doomed}:
            kept = [m for m in chat.by_session.get(session_id, ()) if m.id not in ids]
            if kept:
                chat.by_session[session_id] = kept
            else:
                chat.by_session.pop(session_id, None)
        for message_id in ids:
            chat.by_id.pop(message_id, None)
            chat.analyzed.pop(message_id, None)

    def delete_messages(self, session_id: str) -> int:
        chat = self._chat
        with self._lock:
            doomed = chat.by_session.get(session_id, [])
            self._drop_messages(list(doomed))
            chat.summaries.pop(session_id, None)
        return len(doomed)

    def search_messages(
        self, query: Node, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        chat = self._chat
        with self._lock:
            messages = list(chat.by_id.values())
            analyzed = dict(chat.analyzed)
        candidates = [
            (m, analyzed[m.id])
            for m in messages
            if (session_id is None or m.session_id == session_id) and (user_id is None or m.user_id == user_id)
        ]
        ranked = CompiledQuery(query, weights=(1.0,)).rank(candidates, list(analyzed.values()))
        ranked.sort(key=lambda pair: (-pair[1], pair[0].seq))
        return ranked[:limit]

    def iter_messages(self, *, batch_size: int = 1000) -> Iterator[Message]:
        with self._lock:
            messages = sorted(self._chat.by_id.values(), key=lambda m: m.seq)
        yield from messages

    # -- summaries and profiles -----------------------------------------------
    def put_summary(self, summary: Summary) -> None:
        with self._lock:
            self._require_sessions([summary.session_id])
            self._chat.summaries[summary.session_id] = summary

    def get_summary(self, session_id: str) -> Summary | None:
        return self._chat.summaries.get(session_id)

    def put_profile(self, profile: Profile) -> None:
        with self._lock:
            self._chat.profiles[profile.user_id] = profile

    def get_profile(self, user_id: str) -> Profile | None:
        return self._chat.profiles.get(user_id)

    def delete_profile(self, user_id: str) -> bool:
        with self._lock:
            return self._chat.profiles.pop(user_id, None) is not None

    # -- checkpoints -----------------------------------------------------------
    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._insert_new(self._chat.checkpoints, checkpoint, f"checkpoint {checkpoint.id} already exists")

    def _insert_new(self, records: dict[str, Any], record: Any, taken: str) -> None:
        """Insert a record (a checkpoint, a run) of an existing session; Conflict(``taken``) when its id is there."""
        with self._lock:
            self._require_sessions([record.session_id])
            if record.id in records:
                raise Conflict(taken)
            records[record.id] = record

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return self._chat.checkpoints.get(checkpoint_id)

    def list_checkpoints(self, session_id: str, *, status: str | None = None) -> list[Checkpoint]:
        with self._lock:
            found = [
                c
                for c in self._chat.checkpoints.values()
                if c.session_id == session_id and (status is None or c.status == status)
            ]
        found.sort(key=lambda c: c.id)
        found.sort(key=lambda c: c.created_at, reverse=True)
        return found

    def resume_checkpoint(self, checkpoint_id: str, *, now: datetime) -> Checkpoint:
        with self._lock:
            c = self._chat.checkpoints.get(checkpoint_id)
            if c is None:
                raise NotFound(f"checkpoint {checkpoint_id} does not exist")
            if c.status != "paused":
                raise Conflict(f"checkpoint {checkpoint_id} was already resumed at {to_iso(c.resumed_at)}")
            c = c.model_copy(update={"status": "resumed", "resumed_at": now})
            self._chat.checkpoints[checkpoint_id] = c
        return c

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._lock:
            return self._chat.checkpoints.pop(checkpoint_id, None) is not None

    def iter_summaries(self) -> Iterator[Summary]:
        with self._lock:
            return iter(list(self._chat.summaries.values()))

    def iter_profiles(self) -> Iterator[Profile]:
        with self._lock:
            return iter(list(self._chat.profiles.values()))

    def iter_checkpoints(self) -> Iterator[Checkpoint]:
        with self._lock:
            return iter(sorted(self._chat.checkpoints.values(), key=lambda c: (c.created_at, c.id)))

    # -- runs ------------------------------------------------------------------
    def put_run(self, run: Run) -> None:
        self._insert_new(self._chat.runs, run, f"storing a run violates a constraint: run id {run.id} is taken")

    def get_run(self, run_id: str) -> Run | None:
        return self._chat.runs.get(run_id)

    def list_runs(self, query: RunQuery) -> list[Run]:
        with self._lock:
            runs = list(self._chat.runs.values())
        return query.select(runs)

    def move_run(
        self, run_id: str, *, from_statuses: Sequence[str], status: str, checkpoint_id: str | None, now: datetime
    ) -> Run:
        with self._lock:  # check and set under one lock: racing callers cannot both move it
            run = self._chat.runs.get(run_id)
            if run is None:
                raise NotFound(f"run {run_id} does not exist")
            if run.status not in from_statuses:
                raise run_conflict(run_id, run.status, from_statuses, status)
            moved = run.model_copy(
                update={"status": status, "checkpoint_id": checkpoint_id or run.checkpoint_id, "updated_at": now}
            )
            self._chat.runs[run_id] = moved
            return moved

    def _conversation_counts(self) -> dict[str, int]:
        """messages, summaries, profiles, checkpoints (for ``counts``)."""
        chat = self._chat
        with self._lock:
            return {
                "messages": len(chat.by_id),
                "summaries": len(chat.summaries),
                "profiles": len(chat.profiles),
                "checkpoints": len(chat.checkpoints),
                "runs": len(chat.runs),
            }

    # -- bulk restore (for stores that keep a MemoryStore as their working copy) ---
    def _restore_conversation(
        self,
        messages: Sequence[Message],
        summaries: Sequence[Summary],
        profiles: Sequence[Profile],
        checkpoints: Sequence[Checkpoint],
        runs: Sequence[Run] = (),
    ) -> None:
        """Load records as they were saved, ``seq`` included (json:// reading its files)."""
        chat = self._chat
        with self._lock:
            for m in sorted(messages, key=lambda m: m.seq):
                chat.by_session.setdefault(m.session_id, []).append(m)
                chat.by_id[m.id] = m
                chat.analyzed[m.id] = AnalyzedText.of(m.content)
                chat.last_seq = max(chat.last_seq, m.seq)
            chat.summaries.update({s.session_id: s for s in summaries})
            chat.profiles.update({p.user_id: p for p in profiles})
            chat.checkpoints.update({c.id: c for c in checkpoints})
            chat.runs.update({r.id: r for r in runs})

    # -- retention -------------------------------------------------------------
    def prune_conversation(self, plan: PrunePlan) -> PruneCounts:
        chat = self._chat
        with self._lock:
            in_scope = [s for s in self._sessions.values() if plan.session_id is None or s.id == plan.session_id]
            sessions = {
                s.id
                for s in in_scope
                if (plan.any_status and plan.session_id is not None)
                or plan.before is not None
                and s.status in END_STATUSES
                and s.ended_at is not None
                and s.ended_at < plan.before
            }
            messages: list[Message] = []
            if plan.before is not None or plan.keep_last_per_session is not None:
                for session_id, history in chat.by_session.items():
                    if plan.session_id is not None and session_id != plan.session_id:
                        continue
                    keep_from = len(history) - (plan.keep_last_per_session or 0)
                    for i, m in enumerate(history):
                        if (
                            session_id in sessions
                            or (plan.before is not None and m.created_at < plan.before)
                            or (plan.keep_last_per_session is not None and i < keep_from)
                        ):
                            messages.append(m)
            checkpoints = [
                c.id
                for c in chat.checkpoints.values()
                if plan.before is not None
                and (plan.session_id is None or c.session_id == plan.session_id)
                and (c.created_at < plan.before or c.session_id in sessions)
            ]
            tasks = [t.id for t in self._tasks.values() if t.session_id in sessions]
            if not plan.dry_run:
                self._drop_messages(messages)
                for checkpoint_id in checkpoints:
                    del chat.checkpoints[checkpoint_id]
                for task_id in tasks:
                    del self._tasks[task_id]
                for session_id in sessions:
                    del self._sessions[session_id]
                    chat.summaries.pop(session_id, None)
                for run_id in [r.id for r in chat.runs.values() if r.session_id in sessions]:
                    del chat.runs[run_id]
        return PruneCounts(messages=len(messages), sessions=len(sessions), checkpoints=len(checkpoints), tasks=len(tasks))
