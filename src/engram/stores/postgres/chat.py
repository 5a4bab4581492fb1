"""Conversation primitives of the PostgreSQL backend: messages, summaries, profiles, checkpoints.

A mixin of :class:`engram.stores.postgres.store.PostgresStore`: it runs the pure
builders of ``_postgres_chat_sql`` through the store's pooled connections and
error translation. ``seq`` comes from an identity column: it only grows, so it
orders a session's messages stably.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any

import psycopg

from engram.errors import Conflict, NotFound
from engram.models import Checkpoint, Message, Profile, Run, Summary
from engram.search.query import Node, positive_terms
from engram.search.tsquery import compile_tsquery, document_tsvector, quote_lexeme
from engram.stores._sql_rows import POSTGRES_ROWS, first, paged
from engram.stores.base import MessageQuery, PruneCounts, PrunePlan, RunQuery, run_conflict
from engram.stores.postgres import chat_sql as q

_message, _summary, _profile = POSTGRES_ROWS.message, POSTGRES_ROWS.summary, POSTGRES_ROWS.profile
_checkpoint, _run_of = POSTGRES_ROWS.checkpoint, POSTGRES_ROWS.run


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _text(value: str) -> tuple[str, bool]:
    """``text`` cannot hold NUL: such text is stored as a JSON string and flagged."""
    return (json.dumps(value), True) if "\x00" in value else (value, False)


def message_params(m: Message) -> dict[str, Any]:
    content, escaped = _text(m.content)
    tsv = document_tsvector(m.session_id, m.content)
    if m.user_id is not None:
        tsv += " " + quote_lexeme(q.user_lexeme(m.user_id))
    return {
        "id": m.id,
        "session_id": m.session_id,
        "role": m.role,
        "content": content,
        "escaped": escaped,
        "user_id": m.user_id,
        "agent_id": m.agent_id,
        "metadata": _json(m.metadata),
        "tool_calls": _json(m.tool_calls) if m.tool_calls else None,
        "tool_call_id": m.tool_call_id,
        "attachments": _json([a.model_dump(mode="json") for a in m.attachments]) if m.attachments else None,
        "created_at": m.created_at,
        "tsv": tsv,
    }


def _rank(node: Node) -> str:
    terms = positive_terms(node)
    return " | ".join(compile_tsquery(t) for t in terms) if len(terms) > 1 else compile_tsquery(terms[0])


class PostgresConversation:
    """Implements the CONVERSATION primitives of ``Store`` on PostgreSQL."""

    # Provided by PostgresStore.
    _conn: Any
    _run: Any
    _fetch: Any

    @contextmanager
    def _session_write(self, action: str, session_ids: Sequence[str]) -> Iterator[psycopg.Connection]:
        """A write whose foreign-key failure means "no such session": NotFound."""
        try:
            with self._conn(action) as conn:
                yield conn
        except Conflict as error:
            if not isinstance(error.__cause__, psycopg.errors.ForeignKeyViolation):
                raise
            found = {r[0] for r in self._fetch("checking sessions", q.SESSIONS_EXIST, {"ids": list(set(session_ids))})}
            missing = sorted(set(session_ids) - found)
            raise NotFound(f"session {', '.join(missing) or '?'} does not exist") from error.__cause__

    # -- messages --------------------------------------------------------------
    def append_messages(self, messages: Sequence[Message]) -> list[Message]:
        if not messages:
            return []
        params = [message_params(m) for m in messages]
        action = "storing a message" if len(messages) == 1 else f"storing {len(messages)} messages"
        with self._session_write(action, [m.session_id for m in messages]) as conn:
            if len(params) == 1:
                seqs = [self._run(conn, q.INSERT_MESSAGE, params[0]).fetchone()[0]]
            else:
                seqs = []
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(q.INSERT_MESSAGE, params, returning=True)
                    while True:
                        seqs.append(cur.fetchone()[0])
                        if not cur.nextset():
                            break
        return [m.model_copy(update={"seq": s}) for m, s in zip(messages, seqs)]

    def put_messages(self, messages: Sequence[Message]) -> list[Message]:
        if not messages:
            return []
        stored: dict[str, Message] = {}
        out: list[Message] = []
        with self._session_write(f"copying {len(messages)} messages", [m.session_id for m in messages]) as conn:
            with conn.transaction():
                self._run(conn, q.LOCK_MESSAGES)
                ids = list(dict.fromkeys(m.id for m in messages))
                stored.update((r[0], _message(r)) for r in self._run(conn, q.GET_MESSAGES, {"ids": ids}).fetchall())
                last = self._run(conn, q.LAST_SEQ).fetchone()[0]
                new = []
                for m in messages:
                    if m.id not in stored:
                        last = m.seq if m.seq > last else last + 1
                        stored[m.id] = m.model_copy(update={"seq": last})
                        new.append({**message_params(m), "seq": last})
                    out.append(stored[m.id])
                if new:
                    with conn.cursor() as cur:
                        cur.executemany(q.PUT_MESSAGE, new)
                    self._run(conn, q.SYNC_SEQ, {"seq": last})
        return out

    def get_message(self, message_id: str) -> Message | None:
        return first(self._fetch("reading a message", q.GET_MESSAGE, {"id": message_id}), _message)

    def list_messages(self, query: MessageQuery) -> list[Message]:
        sql, params = q.list_messages_sql(query)
        return [_message(r) for r in self._fetch("reading the history", sql, params)]

    def count_messages(self, session_id: str, *, after_seq: int = 0) -> int:
        return self._fetch("counting messages", q.COUNT_MESSAGES, {"session_id": session_id, "after": after_seq})[0][0]

    def delete_messages(self, session_id: str) -> int:
        with self._conn("deleting the history") as conn, conn.transaction():
            self._run(conn, q.DELETE_SUMMARY, {"session_id": session_id})
            return self._run(conn, q.DELETE_MESSAGES, {"session_id": session_id}).rowcount

    def search_messages(
        self, query: Node, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        sql, params = q.search_messages_sql(q.message_tsquery(query, session_id, user_id), _rank(query), limit)
        return [(_message(r), float(r[13])) for r in self._fetch("searching messages", sql, params)]

    def iter_messages(self, *, batch_size: int = 1000) -> Iterator[Message]:
        fetch = partial(self._fetch, "exporting messages", q.ITER_MESSAGES)
        return paged(lambda after: fetch({"after": after, "limit": batch_size}), _message, 12, 0)

    # -- summaries and profiles -----------------------------------------------
    def put_summary(self, summary: Summary) -> None:
        content, escaped = _text(summary.content)
        params = {
            "session_id": summary.session_id, "content": content, "escaped": escaped,
            "message_count": summary.message_count, "last_seq": summary.last_seq, "updated_at": summary.updated_at,
        }  # fmt: skip
        with self._session_write("storing a summary", [summary.session_id]) as conn:
            self._run(conn, q.UPSERT_SUMMARY, params)

    def get_summary(self, session_id: str) -> Summary | None:
        return first(self._fetch("reading a summary", q.GET_SUMMARY, {"session_id": session_id}), _summary)

    def iter_summaries(self) -> Iterator[Summary]:
        return (_summary(r) for r in self._fetch("exporting summaries", q.ITER_SUMMARIES))

    def put_profile(self, profile: Profile) -> None:
        traits = _json({name: t.model_dump(mode="json") for name, t in profile.traits.items()})
        with self._conn("storing a profile") as conn:
            self._run(
                conn,
                q.UPSERT_PROFILE,
                {
                    "user_id": profile.user_id, "traits": traits, "updated_at": profile.updated_at,
                    "schema_name": profile.schema_name, "schema_version": profile.schema_version,
                },
            )

    def get_profile(self, user_id: str) -> Profile | None:
        return first(self._fetch("reading a profile", q.GET_PROFILE, {"user_id": user_id}), _profile)

    def delete_profile(self, user_id: str) -> bool:
        with self._conn("deleting a profile") as conn:
            return self._run(conn, q.DELETE_PROFILE, {"user_id": user_id}).rowcount > 0

    def iter_profiles(self) -> Iterator[Profile]:
        return (_profile(r) for r in self._fetch("exporting profiles", q.ITER_PROFILES))

    # -- checkpoints -----------------------------------------------------------
    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        params = {
            "id": c.id, "session_id": c.session_id, "run_id": c.run_id, "state": _json(c.state),
            "status": c.status, "created_at": c.created_at, "resumed_at": c.resumed_at,
        }  # fmt: skip
        with self._session_write("storing a checkpoint", [c.session_id]) as conn:
            self._run(conn, q.INSERT_CHECKPOINT, params)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return first(self._fetch("reading a checkpoint", q.GET_CHECKPOINT, {"id": checkpoint_id}), _checkpoint)

    def list_checkpoints(self, session_id: str, *, status: str | None = None) -> list[Checkpoint]:
        sql, params = q.list_checkpoints_sql(session_id, status)
        return [_checkpoint(r) for r in self._fetch("listing checkpoints", sql, params)]

    def resume_checkpoint(self, checkpoint_id: str, *, now: datetime) -> Checkpoint:
        rows = self._fetch("resuming a checkpoint", q.RESUME_CHECKPOINT, {"id": checkpoint_id, "now": now})
        if rows:
            return _checkpoint(rows[0])
        existing = self.get_checkpoint(checkpoint_id)
        if existing is None:
            raise NotFound(f"checkpoint {checkpoint_id} does not exist")
        raise Conflict(f"checkpoint {checkpoint_id} was already resumed at {existing.resumed_at.isoformat() if existing.resumed_at else '?'}")

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._conn("deleting a checkpoint") as conn:
            return self._run(conn, q.DELETE_CHECKPOINT, {"id": checkpoint_id}).rowcount > 0

    # -- runs ------------------------------------------------------------------
    def put_run(self, run: Run) -> None:
        with self._session_write("storing a run", [run.session_id]) as conn:
            self._run(conn, q.INSERT_RUN, run.model_dump())

    def get_run(self, run_id: str) -> Run | None:
        return first(self._fetch("reading a run", q.GET_RUN, {"id": run_id}), _run_of)

    def list_runs(self, query: RunQuery) -> list[Run]:
        sql, params = q.list_runs_sql(query)
        return [_run_of(r) for r in self._fetch("listing runs", sql, params)]

    def move_run(
        self, run_id: str, *, from_statuses: Sequence[str], status: str, checkpoint_id: str | None, now: datetime
    ) -> Run:
        params = {"id": run_id, "from_statuses": list(from_statuses), "status": status, "checkpoint_id": checkpoint_id, "now": now}
        rows = self._fetch("moving a run", q.MOVE_RUN, params)
        if rows:
            return _run_of(rows[0])
        existing = self.get_run(run_id)
        if existing is None:
            raise NotFound(f"run {run_id} does not exist")
        raise run_conflict(run_id, existing.status, from_statuses, status)

    def iter_checkpoints(self) -> Iterator[Checkpoint]:
        return (_checkpoint(r) for r in self._fetch("exporting checkpoints", q.ITER_CHECKPOINTS))

    def _conversation_counts(self) -> dict[str, int]:
        """messages, summaries, profiles, checkpoints, runs (for ``counts``)."""
        row = self._fetch("counting", q.COUNT_CONVERSATION)[0]
        return dict(zip(("messages", "summaries", "profiles", "checkpoints", "runs"), row))

    # -- retention -------------------------------------------------------------
    def prune_conversation(self, plan: PrunePlan) -> PruneCounts:
        selections = q.prune_selections(plan)
        params = q.prune_params(plan)
        counts: dict[str, int] = {}
        with self._conn("pruning conversations") as conn, conn.transaction():
            # Counted and deleted in one transaction: the report matches what went.
            for table, selection in selections.items():
                counts[table] = 0 if selection is None else self._run(conn, f"SELECT count(*) FROM ({selection[1]}) AS doomed", params).fetchone()[0]
            if not plan.dry_run:
                for table in ("engram_messages", "engram_checkpoints", "engram_sessions"):
                    selection = selections[table]
                    if selection is not None and counts[table]:
                        key, select = selection
                        self._run(conn, f"DELETE FROM {table} WHERE {key} IN ({select})", params)
        return PruneCounts(
            messages=counts["engram_messages"],
            sessions=counts["engram_sessions"],
            checkpoints=counts["engram_checkpoints"],
            tasks=counts["engram_tasks"],
        )

    def prune_entries(self, *, now: datetime, namespace: str | None = None, dry_run: bool = False) -> int:
        where = "expires_at IS NOT NULL AND expires_at <= %(now)s" + (" AND namespace = %(namespace)s" if namespace is not None else "")
        params = {"now": now, "namespace": namespace}
        if dry_run:
            return self._fetch("counting expired entries", f"SELECT count(*) FROM engram_entries WHERE {where}", params)[0][0]
        with self._conn("pruning expired entries") as conn:
            return self._run(conn, f"DELETE FROM engram_entries WHERE {where}", params).rowcount
