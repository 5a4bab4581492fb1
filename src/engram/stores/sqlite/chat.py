"""Conversation primitives of the SQLite backend: messages, summaries, profiles, checkpoints.

A mixin of :class:`engram.stores.sqlite.store.SQLiteStore`: it runs the pure
builders of ``_sql_chat`` through the store's ``_write`` / ``_read``, so the
transaction and error-translation rules are the store's own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from engram._time import to_iso
from engram.errors import Conflict, NotFound
from engram.models import Checkpoint, Message, Profile, Run, Summary
from engram.search.query import Node
from engram.stores._sql_rows import SQLITE_ROWS, built, first
from engram.stores.base import MessageQuery, PruneCounts, PrunePlan, RunQuery, run_conflict
from engram.stores.sqlite import chat_sql as sql


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def message_params(m: Message, seq: int | None) -> tuple[Any, ...]:
    return (
        seq,
        m.id,
        m.session_id,
        m.role,
        m.content,
        m.user_id,
        m.agent_id,
        _json(m.metadata),
        _json(m.tool_calls) if m.tool_calls else None,
        m.tool_call_id,
        _json([a.model_dump(mode="json") for a in m.attachments]) if m.attachments else None,
        to_iso(m.created_at),
        sql.scope_token(m.session_id),
        "" if m.user_id is None else sql.scope_token(m.user_id),
    )


_message, _summary, _profile = SQLITE_ROWS.message, SQLITE_ROWS.summary, SQLITE_ROWS.profile
_checkpoint, _run_of = SQLITE_ROWS.checkpoint, SQLITE_ROWS.run


def _is_foreign_key_failure(exc: BaseException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, sqlite3.IntegrityError) and "FOREIGN KEY" in str(cause)


class SQLiteConversation:
    """Implements the CONVERSATION primitives of ``Store`` on SQLite."""

    # Provided by SQLiteStore.
    _write: Any
    _read: Any

    def _write_to_session(self, action: str, session_ids: Sequence[str]) -> AbstractContextManager[sqlite3.Connection]:
        return _SessionWrite(self, action, session_ids)

    # -- messages --------------------------------------------------------------
    def append_messages(self, messages: Sequence[Message]) -> list[Message]:
        if not messages:
            return []
        action = "storing a message" if len(messages) == 1 else f"storing {len(messages)} messages"
        with self._write_to_session(action, [m.session_id for m in messages]) as conn:
            if len(messages) == 1:  # one statement: SQLite picks the next seq (max + 1)
                first = conn.execute(sql.INSERT_MESSAGE + " RETURNING seq", message_params(messages[0], None)).fetchone()[0]
            else:
                first = conn.execute(sql.NEXT_SEQ).fetchone()[0]
                conn.executemany(sql.INSERT_MESSAGE, [message_params(m, first + i) for i, m in enumerate(messages)])
        return [built(Message, {**m.__dict__, "seq": first + i}) for i, m in enumerate(messages)]

    def put_messages(self, messages: Sequence[Message]) -> list[Message]:
        if not messages:
            return []
        stored: dict[str, Message] = {}
        out: list[Message] = []
        with self._write_to_session(f"copying {len(messages)} messages", [m.session_id for m in messages]) as conn:
            ids = list(dict.fromkeys(m.id for m in messages))
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                rows = conn.execute(
                    f"SELECT {sql.MESSAGE_COLUMNS} FROM messages m WHERE m.id IN ({', '.join('?' * len(chunk))})", chunk
                ).fetchall()
                stored.update((r[0], _message(r)) for r in rows)
            last = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0]
            new = []
            for m in messages:
                if m.id not in stored:
                    last = m.seq if m.seq > last else last + 1
                    stored[m.id] = built(Message, {**m.__dict__, "seq": last})
                    new.append(message_params(m, last))
                out.append(stored[m.id])
            conn.executemany(sql.INSERT_MESSAGE, new)
        return out

    def get_message(self, message_id: str) -> Message | None:
        rows = self._read("reading a message", f"SELECT {sql.MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?", (message_id,))
        return first(rows, _message)

    def list_messages(self, query: MessageQuery) -> list[Message]:
        statement, params, newest_first = sql.list_messages_sql(query)
        rows = self._read("reading the history", statement, params)
        if newest_first:
            rows.reverse()
        return [_message(r) for r in rows]

    def count_messages(self, session_id: str, *, after_seq: int = 0) -> int:
        return self._read(
            "counting messages",
            "SELECT count(*) FROM messages WHERE session_id = ? AND seq > ?",
            (session_id, after_seq),
        )[0][0]

    def delete_messages(self, session_id: str) -> int:
        with self._write("deleting the history") as conn:
            conn.execute("DELETE FROM summaries WHERE session_id = ?", (session_id,))
            return conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,)).rowcount

    def search_messages(
        self, query: Node, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        statement, params = sql.search_messages_sql(sql.message_match(query, session_id, user_id), limit)
        return [(_message(r), -r[12]) for r in self._read("searching messages", statement, params)]

    def iter_messages(self, *, batch_size: int = 1000) -> Iterator[Message]:
        last = 0
        while rows := self._read(
            "exporting messages",
            f"SELECT {sql.MESSAGE_COLUMNS} FROM messages m WHERE m.seq > ? ORDER BY m.seq LIMIT ?",
            (last, batch_size),
        ):
            yield from (_message(r) for r in rows)
            last = rows[-1][11]

    # -- summaries and profiles -----------------------------------------------
    def put_summary(self, summary: Summary) -> None:
        with self._write_to_session("storing a summary", [summary.session_id]) as conn:
            conn.execute(
                sql.UPSERT_SUMMARY,
                (summary.session_id, summary.content, summary.message_count, summary.last_seq, to_iso(summary.updated_at)),
            )

    def get_summary(self, session_id: str) -> Summary | None:
        rows = self._read(
            "reading a summary", f"SELECT {sql.SUMMARY_COLUMNS} FROM summaries WHERE session_id = ?", (session_id,)
        )
        return first(rows, _summary)

    def put_profile(self, profile: Profile) -> None:
        traits = {name: t.model_dump(mode="json") for name, t in profile.traits.items()}
        with self._write("storing a profile") as conn:
            conn.execute(
                sql.UPSERT_PROFILE,
                (profile.user_id, _json(traits), to_iso(profile.updated_at), profile.schema_name, profile.schema_version),
            )

    def get_profile(self, user_id: str) -> Profile | None:
        rows = self._read("reading a profile", f"SELECT {sql.PROFILE_COLUMNS} FROM profiles WHERE user_id = ?", (user_id,))
        return first(rows, _profile)

    def delete_profile(self, user_id: str) -> bool:
        with self._write("deleting a profile") as conn:
            return conn.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,)).rowcount > 0

    # -- checkpoints -----------------------------------------------------------
    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        with self._write_to_session("storing a checkpoint", [c.session_id]) as conn:
            conn.execute(
                sql.INSERT_CHECKPOINT,
                (c.id, c.session_id, c.run_id, _json(c.state), c.status, to_iso(c.created_at), to_iso(c.resumed_at)),
            )

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        rows = self._read(
            "reading a checkpoint", f"SELECT {sql.CHECKPOINT_COLUMNS} FROM checkpoints WHERE id = ?", (checkpoint_id,)
        )
        return first(rows, _checkpoint)

    def list_checkpoints(self, session_id: str, *, status: str | None = None) -> list[Checkpoint]:
        statement, params = sql.list_checkpoints_sql(session_id, status)
        return [_checkpoint(r) for r in self._read("listing checkpoints", statement, params)]

    def resume_checkpoint(self, checkpoint_id: str, *, now: datetime) -> Checkpoint:
        with self._write("resuming a checkpoint") as conn:
            row = conn.execute(sql.RESUME_CHECKPOINT, (to_iso(now), checkpoint_id)).fetchone()
            if row is None:
                exists = conn.execute("SELECT resumed_at FROM checkpoints WHERE id = ?", (checkpoint_id,)).fetchone()
        if row is not None:
            return _checkpoint(row)
        if exists is None:
            raise NotFound(f"checkpoint {checkpoint_id} does not exist")
        raise Conflict(f"checkpoint {checkpoint_id} was already resumed at {exists[0]}")

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._write("deleting a checkpoint") as conn:
            return conn.execute("DELETE FROM checkpoints WHERE id = ?", (checkpoint_id,)).rowcount > 0

    # -- runs ------------------------------------------------------------------
    def put_run(self, run: Run) -> None:
        r = run
        with self._write_to_session("storing a run", [r.session_id]) as conn:
            conn.execute(
                sql.INSERT_RUN,
                (r.id, r.session_id, r.user_id, r.agent_id, r.status, r.checkpoint_id, to_iso(r.created_at),
                 to_iso(r.updated_at)),
            )

    def get_run(self, run_id: str) -> Run | None:
        rows = self._read("reading a run", f"SELECT {sql.RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return first(rows, _run_of)

    def list_runs(self, query: RunQuery) -> list[Run]:
        statement, params = sql.list_runs_sql(query)
        return [_run_of(r) for r in self._read("listing runs", statement, params)]

    def move_run(
        self, run_id: str, *, from_statuses: Sequence[str], status: str, checkpoint_id: str | None, now: datetime
    ) -> Run:
        statement, params = sql.move_run_sql(run_id, tuple(from_statuses), status, checkpoint_id, to_iso(now))
        with self._write("moving a run") as conn:  # BEGIN IMMEDIATE: one writer across processes
            row = conn.execute(statement, params).fetchone()
            current = None if row else conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is not None:
            return _run_of(row)
        if current is None:
            raise NotFound(f"run {run_id} does not exist")
        raise run_conflict(run_id, current[0], from_statuses, status)

    def iter_summaries(self) -> Iterator[Summary]:
        rows = self._read("exporting summaries", f"SELECT {sql.SUMMARY_COLUMNS} FROM summaries ORDER BY session_id")
        return (_summary(r) for r in rows)

    def iter_profiles(self) -> Iterator[Profile]:
        rows = self._read("exporting profiles", f"SELECT {sql.PROFILE_COLUMNS} FROM profiles ORDER BY user_id")
        return (_profile(r) for r in rows)

    def iter_checkpoints(self) -> Iterator[Checkpoint]:
        rows = self._read("exporting checkpoints", f"SELECT {sql.CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY created_at, id")
        return (_checkpoint(r) for r in rows)

    def _conversation_counts(self) -> dict[str, int]:
        """messages, summaries, profiles, checkpoints, runs (for ``counts``)."""
        row = self._read("counting", sql.COUNT_CONVERSATION)[0]
        return dict(zip(("messages", "summaries", "profiles", "checkpoints", "runs"), row))

    # -- retention -------------------------------------------------------------
    def prune_conversation(self, plan: PrunePlan) -> PruneCounts:
        selections = {
            "messages": sql.doomed_messages_sql(plan),
            "checkpoints": sql.doomed_checkpoints_sql(plan),
            "tasks": sql.doomed_tasks_sql(plan),
            "sessions": sql.doomed_sessions_sql(plan),
        }
        counts: dict[str, int] = {}
        # Count and delete in one write transaction, so the report is exact.
        with self._write("pruning conversations") as conn:
            for kind, selection in selections.items():
                counts[kind] = 0 if selection is None else conn.execute(*sql.count_sql(selection)).fetchone()[0]
            if not plan.dry_run:
                for kind, key in (("messages", "seq"), ("checkpoints", "id"), ("sessions", "id")):
                    selection = selections[kind]
                    if selection is not None and counts[kind]:
                        # Sessions cascade to their tasks, summaries and whatever else they hold.
                        conn.execute(f"DELETE FROM {kind} WHERE {key} IN ({selection[0]})", selection[1])
        return PruneCounts(**counts)

    def prune_entries(self, *, now: datetime, namespace: str | None = None, dry_run: bool = False) -> int:
        where = "expires_at IS NOT NULL AND expires_at <= ?"
        params: list[Any] = [to_iso(now)]
        if namespace is not None:
            where += " AND namespace = ?"
            params.append(namespace)
        if dry_run:
            return self._read("counting expired entries", f"SELECT count(*) FROM entries WHERE {where}", params)[0][0]
        with self._write("pruning expired entries") as conn:
            return conn.execute(f"DELETE FROM entries WHERE {where}", params).rowcount


class _SessionWrite:
    """A write transaction whose foreign-key failure means "no such session": NotFound."""

    def __init__(self, store: SQLiteConversation, action: str, session_ids: Sequence[str]):
        self.store = store
        self.action = action
        self.session_ids = session_ids
        self._cm: AbstractContextManager[sqlite3.Connection] | None = None

    def __enter__(self) -> sqlite3.Connection:
        self._cm = self.store._write(self.action)
        return self._cm.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._cm is not None
        try:
            return self._cm.__exit__(*exc)
        except Conflict as error:
            if not _is_foreign_key_failure(error):
                raise
            missing = sorted(
                {s for s in self.session_ids if not self.store._read("checking sessions", "SELECT 1 FROM sessions WHERE id = ?", (s,))}
            )
            raise NotFound(f"session {', '.join(missing) or '?'} does not exist") from error.__cause__
