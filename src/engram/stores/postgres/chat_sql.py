"""PostgreSQL conversation schema and pure SQL builders: ``(...) -> (sql, params)``, no I/O.

Messages carry a ``tsvector`` built by ``engram.search.tsquery`` with two extra
lexemes no query word can produce: ``#<hash>`` for the session (the same form
as an entry's namespace lexeme) and ``#u<hash>`` for the user. A scoped search
is one GIN index condition: ``tsv @@ ('#…' & '#u…' & (query))``.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

from engram.search.query import Node
from engram.search.tsquery import compile_tsquery, namespace_lexeme, quote_lexeme
from engram.stores._where import given_named, where
from engram.stores.base import MessageQuery, PrunePlan, RunQuery

# Migration 2 of engram.stores.postgres.sql.MIGRATIONS.
CONVERSATION_SCHEMA = """
CREATE TABLE engram_messages (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text COLLATE "C" NOT NULL UNIQUE,
    session_id      text COLLATE "C" NOT NULL REFERENCES engram_sessions (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content         text NOT NULL,
    content_escaped boolean NOT NULL DEFAULT false,  -- content held as a JSON string (it has NUL)
    user_id         text COLLATE "C",
    agent_id        text,
    metadata        json NOT NULL DEFAULT '{}',
    tool_calls      json,
    tool_call_id    text,
    attachments     json,
    created_at      timestamptz NOT NULL,
    tsv             tsvector NOT NULL
);
CREATE INDEX engram_messages_by_session ON engram_messages (session_id, seq);
CREATE INDEX engram_messages_tsv ON engram_messages USING gin (tsv);

CREATE TABLE engram_summaries (
    session_id      text COLLATE "C" PRIMARY KEY REFERENCES engram_sessions (id) ON DELETE CASCADE,
    content         text NOT NULL,
    content_escaped boolean NOT NULL DEFAULT false,
    message_count   bigint NOT NULL,
    last_seq        bigint NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE engram_profiles (
    user_id    text COLLATE "C" PRIMARY KEY,
    traits     json NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE engram_checkpoints (
    id         text COLLATE "C" PRIMARY KEY,
    session_id text COLLATE "C" NOT NULL REFERENCES engram_sessions (id) ON DELETE CASCADE,
    run_id     text,
    state      json NOT NULL,
    status     text NOT NULL CHECK (status IN ('paused', 'resumed')),
    created_at timestamptz NOT NULL,
    resumed_at timestamptz
);
CREATE INDEX engram_checkpoints_by_session ON engram_checkpoints (session_id, created_at DESC, id);
CREATE INDEX engram_checkpoints_by_created ON engram_checkpoints (created_at);
"""

MESSAGE_COLUMNS = (
    "m.id, m.session_id, m.role, m.content, m.content_escaped, m.user_id, m.agent_id, m.metadata,"
    " m.tool_calls, m.tool_call_id, m.attachments, m.created_at, m.seq"
)
INSERT_MESSAGE = """
INSERT INTO engram_messages AS m
    (id, session_id, role, content, content_escaped, user_id, agent_id, metadata, tool_calls, tool_call_id,
     attachments, created_at, tsv)
VALUES (%(id)s, %(session_id)s, %(role)s, %(content)s, %(escaped)s, %(user_id)s, %(agent_id)s,
        %(metadata)s::json, %(tool_calls)s::json, %(tool_call_id)s, %(attachments)s::json, %(created_at)s,
        %(tsv)s::tsvector)
RETURNING seq
"""
COUNT_CONVERSATION = (
    "SELECT (SELECT count(*) FROM engram_messages), (SELECT count(*) FROM engram_summaries),"
    " (SELECT count(*) FROM engram_profiles), (SELECT count(*) FROM engram_checkpoints),"
    " (SELECT count(*) FROM engram_runs)"
)
GET_MESSAGE = f"SELECT {MESSAGE_COLUMNS} FROM engram_messages m WHERE m.id = %(id)s"
GET_MESSAGES = f"SELECT {MESSAGE_COLUMNS} FROM engram_messages m WHERE m.id = ANY(%(ids)s)"
# put_messages: a batch with chosen seq values. Taken under LOCK_MESSAGES, which waits
# for every open insert and holds off new ones, so the seq chosen are free; then
# SYNC_SEQ moves the identity sequence past them for the inserts that follow.
LOCK_MESSAGES = "LOCK TABLE engram_messages IN SHARE ROW EXCLUSIVE MODE"
LAST_SEQ = (
    "SELECT greatest((SELECT coalesce(max(seq), 0) FROM engram_messages),"
    " coalesce(pg_sequence_last_value(pg_get_serial_sequence('engram_messages', 'seq')::regclass), 0))"
)
PUT_MESSAGE = """
INSERT INTO engram_messages AS m
    (seq, id, session_id, role, content, content_escaped, user_id, agent_id, metadata, tool_calls, tool_call_id,
     attachments, created_at, tsv)
OVERRIDING SYSTEM VALUE
VALUES (%(seq)s, %(id)s, %(session_id)s, %(role)s, %(content)s, %(escaped)s, %(user_id)s, %(agent_id)s,
        %(metadata)s::json, %(tool_calls)s::json, %(tool_call_id)s, %(attachments)s::json, %(created_at)s,
        %(tsv)s::tsvector)
"""
SYNC_SEQ = (
    "SELECT setval(pg_get_serial_sequence('engram_messages', 'seq'), greatest(%(seq)s,"
    " coalesce(pg_sequence_last_value(pg_get_serial_sequence('engram_messages', 'seq')::regclass), 0)))"
)
COUNT_MESSAGES = "SELECT count(*) FROM engram_messages WHERE session_id = %(session_id)s AND seq > %(after)s"
DELETE_SUMMARY = "DELETE FROM engram_summaries WHERE session_id = %(session_id)s"
DELETE_MESSAGES = "DELETE FROM engram_messages WHERE session_id = %(session_id)s"
ITER_MESSAGES = (
    f"SELECT {MESSAGE_COLUMNS} FROM engram_messages m WHERE m.seq > %(after)s ORDER BY m.seq LIMIT %(limit)s"
)
SESSIONS_EXIST = "SELECT id FROM engram_sessions WHERE id = ANY(%(ids)s)"

SUMMARY_COLUMNS = "session_id, content, content_escaped, message_count, last_seq, updated_at"
UPSERT_SUMMARY = f"""
INSERT INTO engram_summaries ({SUMMARY_COLUMNS})
VALUES (%(session_id)s, %(content)s, %(escaped)s, %(message_count)s, %(last_seq)s, %(updated_at)s)
ON CONFLICT (session_id) DO UPDATE SET content = excluded.content, content_escaped = excluded.content_escaped,
    message_count = excluded.message_count, last_seq = excluded.last_seq, updated_at = excluded.updated_at
"""
GET_SUMMARY = f"SELECT {SUMMARY_COLUMNS} FROM engram_summaries WHERE session_id = %(session_id)s"
ITER_SUMMARIES = f"SELECT {SUMMARY_COLUMNS} FROM engram_summaries ORDER BY session_id"

PROFILE_COLUMNS = "user_id, traits, updated_at, schema_name, schema_version"
UPSERT_PROFILE = f"""
INSERT INTO engram_profiles ({PROFILE_COLUMNS})
VALUES (%(user_id)s, %(traits)s::json, %(updated_at)s, %(schema_name)s, %(schema_version)s)
ON CONFLICT (user_id) DO UPDATE SET traits = excluded.traits, updated_at = excluded.updated_at,
    schema_name = excluded.schema_name, schema_version = excluded.schema_version
"""
GET_PROFILE = f"SELECT {PROFILE_COLUMNS} FROM engram_profiles WHERE user_id = %(user_id)s"
DELETE_PROFILE = "DELETE FROM engram_profiles WHERE user_id = %(user_id)s"
ITER_PROFILES = f"SELECT {PROFILE_COLUMNS} FROM engram_profiles ORDER BY user_id"

CHECKPOINT_COLUMNS = "id, session_id, run_id, state, status, created_at, resumed_at"
INSERT_CHECKPOINT = f"""
INSERT INTO engram_checkpoints ({CHECKPOINT_COLUMNS})
VALUES (%(id)s, %(session_id)s, %(run_id)s, %(state)s::json, %(status)s, %(created_at)s, %(resumed_at)s)
"""
GET_CHECKPOINT = f"SELECT {CHECKPOINT_COLUMNS} FROM engram_checkpoints WHERE id = %(id)s"
# Compare-and-set: only a paused checkpoint can be resumed, so racing callers cannot both win.
RESUME_CHECKPOINT = (
    "UPDATE engram_checkpoints SET status = 'resumed', resumed_at = %(now)s WHERE id = %(id)s AND status = 'paused'"
    f" RETURNING {CHECKPOINT_COLUMNS}"
)
DELETE_CHECKPOINT = "DELETE FROM engram_checkpoints WHERE id = %(id)s"

RUN_SCHEMA = """
CREATE TABLE engram_runs (
    id            text COLLATE "C" PRIMARY KEY,
    session_id    text COLLATE "C" NOT NULL REFERENCES engram_sessions (id) ON DELETE CASCADE,
    user_id       text COLLATE "C",
    agent_id      text COLLATE "C",
    status        text NOT NULL CHECK (status IN ('running', 'paused', 'error', 'cancelled', 'completed')),
    checkpoint_id text COLLATE "C",
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX engram_runs_by_session ON engram_runs (session_id, updated_at DESC, id);
CREATE INDEX engram_runs_by_status ON engram_runs (status, updated_at DESC, id);
CREATE INDEX engram_runs_by_user ON engram_runs (user_id, updated_at DESC, id) WHERE user_id IS NOT NULL;
"""
RUN_COLUMNS = "id, session_id, user_id, agent_id, status, checkpoint_id, created_at, updated_at"
INSERT_RUN = f"""
INSERT INTO engram_runs ({RUN_COLUMNS}) VALUES (%(id)s, %(session_id)s, %(user_id)s, %(agent_id)s, %(status)s,
    %(checkpoint_id)s, %(created_at)s, %(updated_at)s)
"""
GET_RUN = f"SELECT {RUN_COLUMNS} FROM engram_runs WHERE id = %(id)s"
# Compare-and-set on the status: the row lock lets one of racing callers match.
MOVE_RUN = f"""
UPDATE engram_runs SET status = %(status)s, checkpoint_id = coalesce(%(checkpoint_id)s, checkpoint_id),
    updated_at = %(now)s
WHERE id = %(id)s AND status = ANY(%(from_statuses)s) RETURNING {RUN_COLUMNS}
"""
ITER_CHECKPOINTS = f"SELECT {CHECKPOINT_COLUMNS} FROM engram_checkpoints ORDER BY created_at, id"


def user_lexeme(user_id: str) -> str:
    """The lexeme naming a user inside a message's tsvector (``#u`` + a 64-bit hash)."""
    return "#u" + blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def message_tsquery(node: Node, session_id: str | None, user_id: str | None) -> str:
    """The tsquery that selects: the query, inside the session and/or user when given."""
    parts = []
    if session_id is not None:
        parts.append(quote_lexeme(namespace_lexeme(session_id)))
    if user_id is not None:
        parts.append(quote_lexeme(user_lexeme(user_id)))
    parts.append(compile_tsquery(node))
    return " & ".join(parts)


def list_messages_sql(query: MessageQuery) -> tuple[str, dict[str, Any]]:
    """Messages of one session, oldest first; with a limit, the newest N of the range."""
    clauses, params = given_named(
        [
            ("session_id", "m.session_id = %(session_id)s", query.session_id),
            ("after_seq", "m.seq > %(after_seq)s", query.after_seq),
            ("before_seq", "m.seq < %(before_seq)s", query.before_seq),
            ("after", "m.created_at > %(after)s", query.after),
            ("before", "m.created_at < %(before)s", query.before),
        ]
    )
    select = f"SELECT {MESSAGE_COLUMNS} FROM engram_messages m{where(clauses)}"
    if query.limit is None:
        return select + " ORDER BY m.seq", params
    params["limit"] = query.limit
    return f"SELECT * FROM ({select} ORDER BY m.seq DESC LIMIT %(limit)s) AS newest ORDER BY seq", params


def search_messages_sql(match: str, rank: str, limit: int) -> tuple[str, dict[str, Any]]:
    sql = (
        f"SELECT {MESSAGE_COLUMNS}, ts_rank_cd(m.tsv, %(rank)s::tsquery, 1) AS score"
        " FROM engram_messages m WHERE m.tsv @@ %(match)s::tsquery ORDER BY score DESC, m.seq LIMIT %(limit)s"
    )
    return sql, {"match": match, "rank": rank, "limit": limit}


def list_checkpoints_sql(session_id: str, status: str | None) -> tuple[str, dict[str, Any]]:
    sql = f"SELECT {CHECKPOINT_COLUMNS} FROM engram_checkpoints WHERE session_id = %(session_id)s"
    params: dict[str, Any] = {"session_id": session_id}
    if status is not None:
        sql += " AND status = %(status)s"
        params["status"] = status
    return sql + " ORDER BY created_at DESC, id", params


def list_runs_sql(query: RunQuery) -> tuple[str, dict[str, Any]]:
    clauses, params = given_named(
        [
            ("session_id", "session_id = %(session_id)s", query.session_id),
            ("user_id", "user_id = %(user_id)s", query.user_id),
            ("statuses", "status = ANY(%(statuses)s)", None if query.statuses is None else list(query.statuses)),
        ]
    )
    sql = (
        f"SELECT {RUN_COLUMNS} FROM engram_runs{where(clauses)}"
        " ORDER BY updated_at DESC, id LIMIT %(limit)s OFFSET %(offset)s"
    )
    return sql, {**params, "limit": query.limit, "offset": query.offset}


def prune_selections(plan: PrunePlan) -> dict[str, tuple[str, str] | None]:
    """Per table: (key column, SELECT of the keys to remove), or None. Parameters: see prune_params."""
    sessions = None
    if plan.any_status and plan.session_id is not None:
        sessions = "SELECT id FROM engram_sessions WHERE id = %(session_id)s"
    elif plan.before is not None:
        sessions = (
            "SELECT id FROM engram_sessions WHERE status IN ('ended', 'error') AND ended_at IS NOT NULL"
            " AND ended_at < %(before)s" + (" AND id = %(session_id)s" if plan.session_id is not None else "")
        )
    messages = None
    if plan.before is not None or plan.keep_last_per_session is not None:
        inner = "SELECT m.seq, m.session_id, m.created_at"
        if plan.keep_last_per_session is not None:
            inner += ", row_number() OVER (PARTITION BY m.session_id ORDER BY m.seq DESC) AS rn"
        inner += " FROM engram_messages m" + (" WHERE m.session_id = %(session_id)s" if plan.session_id is not None else "")
        rules = []
        if plan.before is not None:
            rules += ["w.created_at < %(before)s", f"w.session_id IN ({sessions})"]
        if plan.keep_last_per_session is not None:
            rules.append("w.rn > %(keep)s")
        messages = f"SELECT w.seq FROM ({inner}) AS w WHERE {' OR '.join(rules)}"
    checkpoints = tasks = None
    if sessions is not None:
        checkpoints = (
            f"SELECT id FROM engram_checkpoints WHERE (created_at < %(before)s OR session_id IN ({sessions}))"
            + (" AND session_id = %(session_id)s" if plan.session_id is not None else "")
        )
        tasks = f"SELECT id FROM engram_tasks WHERE session_id IN ({sessions})"
    return {
        "engram_messages": None if messages is None else ("seq", messages),
        "engram_checkpoints": None if checkpoints is None else ("id", checkpoints),
        "engram_tasks": None if tasks is None else ("id", tasks),
        "engram_sessions": None if sessions is None else ("id", sessions),
    }


def prune_params(plan: PrunePlan) -> dict[str, Any]:
    return {"before": plan.before, "session_id": plan.session_id, "keep": plan.keep_last_per_session}
