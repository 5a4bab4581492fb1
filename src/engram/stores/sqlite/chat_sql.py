"""Pure SQL builders for conversation records in SQLite: ``(...) -> (sql, params)``, no I/O.

Messages are searched through ``messages_fts``, whose ``sess`` and ``usr``
columns hold digit tokens naming the session and the user, so a scoped
search is one MATCH inside the index (never a filter applied after it).
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b
from typing import Any

from engram._time import to_iso
from engram.search.fts5 import compile_fts5
from engram.search.query import Node
from engram.stores._where import given, where
from engram.stores.base import MessageQuery, PrunePlan, RunQuery

MESSAGE_COLUMNS = (
    "m.id, m.session_id, m.role, m.content, m.user_id, m.agent_id, m.metadata,"
    " m.tool_calls, m.tool_call_id, m.attachments, m.created_at, m.seq"
)
SUMMARY_COLUMNS = "session_id, content, message_count, last_seq, updated_at"
CHECKPOINT_COLUMNS = "id, session_id, run_id, state, status, created_at, resumed_at"

INSERT_MESSAGE = (
    "INSERT INTO messages (seq, id, session_id, role, content, user_id, agent_id, metadata,"
    " tool_calls, tool_call_id, attachments, created_at, sess, usr)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
NEXT_SEQ = "SELECT coalesce(max(seq), 0) + 1 FROM messages"
COUNT_CONVERSATION = (
    "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM summaries),"
    " (SELECT count(*) FROM profiles), (SELECT count(*) FROM checkpoints), (SELECT count(*) FROM runs)"
)

UPSERT_SUMMARY = (
    f"INSERT INTO summaries ({SUMMARY_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (session_id) DO UPDATE SET content = excluded.content,"
    " message_count = excluded.message_count, last_seq = excluded.last_seq, updated_at = excluded.updated_at"
)
PROFILE_COLUMNS = "user_id, traits, updated_at, schema_name, schema_version"
UPSERT_PROFILE = (
    f"INSERT INTO profiles ({PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (user_id) DO UPDATE SET traits = excluded.traits, updated_at = excluded.updated_at,"
    " schema_name = excluded.schema_name, schema_version = excluded.schema_version"
)
INSERT_CHECKPOINT = f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
# Compare-and-set: only a paused checkpoint can be resumed, so two callers
# racing to resume the same one cannot both win.
RESUME_CHECKPOINT = (
    "UPDATE checkpoints SET status = 'resumed', resumed_at = ? WHERE id = ? AND status = 'paused'"
    f" RETURNING {CHECKPOINT_COLUMNS}"
)

RUN_COLUMNS = "id, session_id, user_id, agent_id, status, checkpoint_id, created_at, updated_at"
INSERT_RUN = f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def move_run_sql(
    run_id: str, from_statuses: tuple[str, ...], status: str, checkpoint_id: str | None, now: str
) -> tuple[str, list[Any]]:
    """Compare-and-set on the status: of callers racing to move a run, one matches the row."""
    marks = ", ".join("?" * len(from_statuses))
    sql = (
        "UPDATE runs SET status = ?, checkpoint_id = coalesce(?, checkpoint_id), updated_at = ?"
        f" WHERE id = ? AND status IN ({marks}) RETURNING {RUN_COLUMNS}"
    )
    return sql, [status, checkpoint_id, now, run_id, *from_statuses]


def list_runs_sql(query: RunQuery) -> tuple[str, list[Any]]:
    clauses, params = given([("session_id = ?", query.session_id), ("user_id = ?", query.user_id)])
    if query.statuses is not None:
        clauses.append(f"status IN ({', '.join('?' * len(query.statuses))})")
        params += query.statuses
    return (
        f"SELECT {RUN_COLUMNS} FROM runs{where(clauses)} ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
        params + [query.limit, query.offset],
    )


# BM25 column weights for (sess, usr, content): the scope tokens never score.
BM25_WEIGHTS = (0.0, 0.0, 1.0)


@lru_cache(maxsize=65536)
def scope_token(value: str) -> str:
    """A digits-only token naming a session or user inside the FTS index.

    Digits pass through unicode61 and the porter stemmer unchanged, and a
    64-bit hash makes collisions negligible.
    """
    return str(int.from_bytes(blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"))


def message_match(node: Node, session_id: str | None, user_id: str | None) -> str:
    """The MATCH string: the content query, plus the scope tokens when scoped."""
    parts = []
    if session_id is not None:
        parts.append(f'sess : "{scope_token(session_id)}"')
    if user_id is not None:
        parts.append(f'usr : "{scope_token(user_id)}"')
    parts.append(f"content : ({compile_fts5(node)})")
    return " AND ".join(parts)


def list_messages_sql(query: MessageQuery) -> tuple[str, list[Any], bool]:
    """Messages of one session: ``(sql, params, newest_first)``.

    Without a limit the rows come oldest first. With one they come newest
    first (straight down the ``(session_id, seq)`` index, no sort) and the
    caller reverses them: a subquery re-sorting in SQL cost ~40% of the read.
    """
    clauses, params = given(
        [
            ("m.session_id = ?", query.session_id),
            ("m.seq > ?", query.after_seq),
            ("m.seq < ?", query.before_seq),
            ("m.created_at > ?", to_iso(query.after)),
            ("m.created_at < ?", to_iso(query.before)),
        ]
    )
    select = f"SELECT {MESSAGE_COLUMNS} FROM messages m{where(clauses)}"
    if query.limit is None:
        return select + " ORDER BY m.seq", params, False
    return select + " ORDER BY m.seq DESC LIMIT ?", params + [query.limit], True


def search_messages_sql(match: str, limit: int) -> tuple[str, list[Any]]:
    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    sql = (
        f"SELECT {MESSAGE_COLUMNS}, bm25(messages_fts, {weights}) AS rank"
        " FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid"
        " WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?"
    )
    return sql, [match, limit]


def list_checkpoints_sql(session_id: str, status: str | None) -> tuple[str, list[Any]]:
    sql = f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE session_id = ?"
    params: list[Any] = [session_id]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return sql + " ORDER BY created_at DESC, id", params


def doomed_sessions_sql(plan: PrunePlan) -> tuple[str, list[Any]] | None:
    """Ids of the ended sessions the plan removes, or None when it removes none."""
    if plan.before is None:
        return None
    if plan.any_status and plan.session_id is not None:
        return "SELECT id FROM sessions WHERE id = ?", [plan.session_id]
    sql = "SELECT id FROM sessions WHERE status IN ('ended', 'error') AND ended_at IS NOT NULL AND ended_at < ?"
    params: list[Any] = [to_iso(plan.before)]
    if plan.session_id is not None:
        sql += " AND id = ?"
        params.append(plan.session_id)
    return sql, params


def doomed_messages_sql(plan: PrunePlan) -> tuple[str, list[Any]] | None:
    """``seq`` of every message the plan removes (its own rules or its session's), or None."""
    if plan.before is None and plan.keep_last_per_session is None:
        return None
    inner = "SELECT m.seq, m.session_id, m.created_at"
    params: list[Any] = []
    if plan.keep_last_per_session is not None:
        inner += ", row_number() OVER (PARTITION BY m.session_id ORDER BY m.seq DESC) AS rn"
    inner += " FROM messages m"
    if plan.session_id is not None:
        inner += " WHERE m.session_id = ?"
        params.append(plan.session_id)
    rules: list[str] = []
    if plan.before is not None:
        rules.append("created_at < ?")
        params.append(to_iso(plan.before))
    if plan.keep_last_per_session is not None:
        rules.append("rn > ?")
        params.append(plan.keep_last_per_session)
    sessions = doomed_sessions_sql(plan)
    if sessions is not None:
        rules.append(f"session_id IN ({sessions[0]})")
        params += sessions[1]
    return f"SELECT seq FROM ({inner}) WHERE {' OR '.join(rules)}", params


def doomed_checkpoints_sql(plan: PrunePlan) -> tuple[str, list[Any]] | None:
    """Ids of the checkpoints the plan removes (created before the cutoff, or of a doomed session)."""
    if plan.before is None:
        return None
    sessions = doomed_sessions_sql(plan)
    assert sessions is not None
    sql = "SELECT id FROM checkpoints WHERE (created_at < ? OR session_id IN (" + sessions[0] + "))"
    params: list[Any] = [to_iso(plan.before), *sessions[1]]
    if plan.session_id is not None:
        sql += " AND session_id = ?"
        params.append(plan.session_id)
    return sql, params


def doomed_tasks_sql(plan: PrunePlan) -> tuple[str, list[Any]] | None:
    """Ids of the tasks that go with the doomed sessions."""
    sessions = doomed_sessions_sql(plan)
    if sessions is None:
        return None
    return f"SELECT id FROM tasks WHERE session_id IN ({sessions[0]})", sessions[1]


def count_sql(select: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    return f"SELECT count(*) FROM ({select[0]})", select[1]
