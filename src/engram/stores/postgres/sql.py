"""PostgreSQL schema (ordered migrations) and pure SQL builders: ``(...) -> (sql, params)``, no I/O.

Values are always bound (``%(name)s`` / ``%s`` placeholders of psycopg). The
only identifiers ever formatted in are the constant table names below and a
schema name validated against :data:`SCHEMA_NAME` (quoted by psycopg.sql).

Text search uses no PostgreSQL parser or dictionary: tsvectors and tsqueries
arrive as bound text built by ``engram.search.tsquery`` (the tokenizer and
stemmer shared by every backend), cast with ``::tsvector`` / ``::tsquery``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engram.stores._where import given_named, where
from engram.stores.base import EntryQuery, MetadataFilter, SessionQuery, TaskQuery
from engram.stores.postgres.blobs import BLOB_SCHEMA
from engram.stores.postgres.chat_sql import CONVERSATION_SCHEMA, RUN_SCHEMA
from engram.stores.postgres.columns import ENTRY_COLUMNS
from engram.stores.postgres.message_vectors import MESSAGE_VECTOR_SCHEMA
from engram.stores.postgres.vectors import VECTOR_SCHEMA

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Key of the advisory lock that serializes migrations across processes ("engr").
MIGRATION_LOCK = 0x656E6772

# Append new migrations at the end; never edit one that has shipped.
MIGRATIONS: list[str] = [
    # 1: entries with a tsvector (namespace lexeme inside it) + GIN index, sessions, tasks.
    """
    CREATE TABLE engram_entries (
        seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id              text COLLATE "C" NOT NULL UNIQUE,
        namespace       text COLLATE "C" NOT NULL,
        key             text COLLATE "C" NOT NULL,
        content         text NOT NULL,
        content_escaped boolean NOT NULL DEFAULT false,  -- content held as a JSON string (it has NUL)
        metadata        json NOT NULL DEFAULT '{}',
        created_at      timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL,
        expires_at      timestamptz,
        tsv             tsvector NOT NULL,
        UNIQUE (namespace, key)
    );
    CREATE INDEX engram_entries_tsv ON engram_entries USING gin (tsv);
    CREATE INDEX engram_entries_by_updated ON engram_entries (updated_at DESC, seq DESC);
    CREATE INDEX engram_entries_by_namespace_updated ON engram_entries (namespace, updated_at DESC, seq DESC);
    CREATE INDEX engram_entries_by_expiry ON engram_entries (expires_at) WHERE expires_at IS NOT NULL;

    CREATE TABLE engram_sessions (
        id         text COLLATE "C" PRIMARY KEY,
        status     text NOT NULL CHECK (status IN ('active', 'ended', 'error')),
        metadata   json NOT NULL DEFAULT '{}',
        started_at timestamptz NOT NULL,
        ended_at   timestamptz
    );
    CREATE INDEX engram_sessions_by_started ON engram_sessions (started_at DESC, id);
    CREATE INDEX engram_sessions_by_status ON engram_sessions (status, started_at DESC, id);
    CREATE INDEX engram_sessions_by_end ON engram_sessions (ended_at) WHERE ended_at IS NOT NULL;

    CREATE TABLE engram_tasks (
        id           text COLLATE "C" PRIMARY KEY,
        agent_type   text NOT NULL,
        input        json,
        output       json,
        status       text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
        session_id   text COLLATE "C" REFERENCES engram_sessions (id) ON DELETE CASCADE,
        created_at   timestamptz NOT NULL,
        updated_at   timestamptz NOT NULL,
        completed_at timestamptz
    );
    CREATE INDEX engram_tasks_by_created ON engram_tasks (created_at DESC, id);
    CREATE INDEX engram_tasks_by_session ON engram_tasks (session_id, created_at DESC, id);
    CREATE INDEX engram_tasks_by_status ON engram_tasks (status, created_at DESC, id);
    """,
    # 2: conversation memory: messages (tsvector with session/user lexemes + GIN),
    # summaries, profiles, checkpoints.
    CONVERSATION_SCHEMA,
    # 3: embeddings: vectors by entry seq, the model, a change log (see _postgres_vectors).
    VECTOR_SCHEMA,
    # 4: message embeddings: vectors by message seq, a change log (see _postgres_message_vectors).
    MESSAGE_VECTOR_SCHEMA,
    # 5: sessions by user and agent (issue 16).
    """
    ALTER TABLE engram_sessions ADD COLUMN user_id text COLLATE "C", ADD COLUMN agent_id text COLLATE "C";
    CREATE INDEX engram_sessions_by_user ON engram_sessions (user_id, started_at DESC, id) WHERE user_id IS NOT NULL;
    CREATE INDEX engram_sessions_by_agent ON engram_sessions (agent_id, started_at DESC, id) WHERE agent_id IS NOT NULL;
    ALTER TABLE engram_profiles ADD COLUMN schema_name text, ADD COLUMN schema_version text;
    """,
    # 6: runs of agents inside sessions (issue 16); resuming is a conditional UPDATE.
    RUN_SCHEMA,
    # 7: blobs of the database blob store (issue 12): a row per blob, its bytes in chunks.
    BLOB_SCHEMA,
    # 8: an entry's context (issue 15), the text embedded ahead of its content; NULL without one
    # (and in every row stored before). A JSON string, so it may hold NUL, which text cannot. The
    # vector embeds both, so it goes when either changes.
    """
    ALTER TABLE engram_entries ADD COLUMN context json;
    DROP TRIGGER engram_entries_vector_stale ON engram_entries;
    CREATE TRIGGER engram_entries_vector_stale AFTER UPDATE OF content, context ON engram_entries
        FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content OR OLD.context::text IS DISTINCT FROM NEW.context::text)
        EXECUTE FUNCTION engram_drop_stale_vector();
    """,
]

# -- schema version --------------------------------------------------------------

VERSION_TABLE_EXISTS = "SELECT to_regclass('engram_schema') IS NOT NULL"
READ_VERSION = "SELECT version FROM engram_schema"
LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS engram_schema (version integer NOT NULL)"
READ_VERSION_FOR_UPDATE = "SELECT version FROM engram_schema FOR UPDATE"
INSERT_VERSION = "INSERT INTO engram_schema (version) VALUES (%s)"
UPDATE_VERSION = "UPDATE engram_schema SET version = %s"

# -- entries ---------------------------------------------------------------------

SESSION_COLUMNS = "id, status, metadata, started_at, ended_at, user_id, agent_id"
TASK_COLUMNS = "id, agent_type, input, output, status, session_id, created_at, updated_at, completed_at"

LIVE = "(e.expires_at IS NULL OR e.expires_at > %(now)s)"

# An existing live entry keeps id and created_at; an expired one is replaced as new.
# Metadata NULL (not given) keeps a live entry's metadata; '{}' clears it.
UPSERT_ENTRY = """
INSERT INTO engram_entries AS e
    (id, namespace, key, content, content_escaped, metadata, created_at, updated_at, expires_at, tsv, context)
VALUES (%(id)s, %(namespace)s, %(key)s, %(content)s, %(escaped)s, coalesce(%(metadata)s::json, '{}'::json),
        %(created_at)s, %(updated_at)s, %(expires_at)s, %(tsv)s::tsvector, %(context)s::json)
ON CONFLICT (namespace, key) DO UPDATE SET
    id = CASE WHEN e.expires_at <= %(now)s THEN excluded.id ELSE e.id END,
    created_at = CASE WHEN e.expires_at <= %(now)s THEN excluded.created_at ELSE e.created_at END,
    content = excluded.content,
    content_escaped = excluded.content_escaped,
    context = excluded.context,
    metadata = CASE WHEN %(metadata)s::json IS NOT NULL OR e.expires_at <= %(now)s
                    THEN excluded.metadata ELSE e.metadata END,
    updated_at = excluded.updated_at,
    expires_at = excluded.expires_at,
    tsv = excluded.tsv
RETURNING id, created_at, metadata
"""

GET_ENTRY = (
    f"SELECT {ENTRY_COLUMNS} FROM engram_entries e"
    f" WHERE e.namespace = %(namespace)s AND e.key = %(key)s AND {LIVE}"
)
DELETE_ENTRY = (
    "DELETE FROM engram_entries e WHERE e.namespace = %(namespace)s AND e.key = %(key)s"
    f" RETURNING {LIVE}"
)
DELETE_NAMESPACE = (
    "WITH gone AS (DELETE FROM engram_entries WHERE namespace = %(namespace)s RETURNING expires_at)"
    " SELECT count(*) FROM gone e WHERE " + LIVE
)
NAMESPACES = f"SELECT DISTINCT e.namespace FROM engram_entries e WHERE {LIVE} ORDER BY e.namespace"
NAMESPACE_COUNTS = (
    f"SELECT e.namespace, count(*) FROM engram_entries e WHERE {LIVE} GROUP BY e.namespace ORDER BY e.namespace"
)
# ORDER BY of each entry listing order; both walk the (namespace, updated_at, seq) index (ASC backwards).
ENTRY_ORDER_BY = {
    "updated_desc": "e.updated_at DESC, e.seq DESC",
    "updated_asc": "e.updated_at ASC, e.seq ASC",
}
PRUNE_EXPIRED = "DELETE FROM engram_entries WHERE expires_at IS NOT NULL AND expires_at <= %(now)s"
ITER_ENTRIES = (
    f"SELECT {ENTRY_COLUMNS}, e.seq FROM engram_entries e WHERE e.seq > %(after)s ORDER BY e.seq LIMIT %(limit)s"
)
COUNTS = """
SELECT
    count(*) FILTER (WHERE e.expires_at IS NULL OR e.expires_at > %(now)s),
    count(DISTINCT e.namespace) FILTER (WHERE e.expires_at IS NULL OR e.expires_at > %(now)s),
    (SELECT count(*) FROM engram_sessions),
    (SELECT count(*) FROM engram_tasks),
    count(*) FILTER (WHERE e.expires_at <= %(now)s),
    pg_total_relation_size('engram_entries'::regclass)
        + pg_total_relation_size('engram_sessions'::regclass)
        + pg_total_relation_size('engram_tasks'::regclass)
FROM engram_entries e
"""
VACUUM = [
    "VACUUM (ANALYZE) engram_entries",
    "VACUUM (ANALYZE) engram_sessions",
    "VACUUM (ANALYZE) engram_tasks",
    "VACUUM (ANALYZE) engram_entry_vectors",
    "VACUUM (ANALYZE) engram_vector_changes",
    "VACUUM (ANALYZE) engram_message_vectors",
    "VACUUM (ANALYZE) engram_message_vector_changes",
]


def metadata_conditions(metadata: MetadataFilter, column: str = "e.metadata") -> tuple[str, dict[str, Any]]:
    """Type-aware equality on JSON values at dotted paths (``True`` does not equal ``1``).

    Paths are bound as ``text[]`` (keys were validated, but need no trust here).
    """
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for i, (key, value) in enumerate(metadata.items()):
        path, val = f"mp{i}", f"mv{i}"
        params[path] = key.split(".")
        at = f"{column} #> %({path})s::text[]"
        text_at = f"{column} #>> %({path})s::text[]"
        if value is None:
            clauses.append(f"json_typeof({at}) = 'null'")
        elif isinstance(value, bool):
            clauses.append(f"json_typeof({at}) = 'boolean' AND {text_at} = %({val})s")
            params[val] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            # Compare as numeric from exact text: 2**53 + 1 stays exact, 1 equals 1.0.
            clauses.append(f"json_typeof({at}) = 'number' AND ({text_at})::numeric = %({val})s::numeric")
            params[val] = json.dumps(value)
        else:
            clauses.append(f"json_typeof({at}) = 'string' AND {text_at} = %({val})s")
            params[val] = value
    return " AND ".join(clauses), params


def list_entries_sql(query: EntryQuery, now: Any) -> tuple[str, dict[str, Any]]:
    where = [LIVE]
    params: dict[str, Any] = {"now": now, "limit": query.limit, "offset": query.offset}
    if query.namespace is not None:
        where.append("e.namespace = %(namespace)s")
        params["namespace"] = query.namespace
    if query.key_prefix:
        where.append("starts_with(e.key, %(key_prefix)s)")  # no LIKE wildcards to escape
        params["key_prefix"] = query.key_prefix
    if query.metadata:
        clause, extra = metadata_conditions(query.metadata)
        where.append(clause)
        params.update(extra)
    sql = (
        f"SELECT {ENTRY_COLUMNS} FROM engram_entries e WHERE {' AND '.join(where)}"
        f" ORDER BY {ENTRY_ORDER_BY[query.order]} LIMIT %(limit)s OFFSET %(offset)s"
    )
    return sql, params


# Entries (expired ones included) matching a tsquery, counted no further than a cap.
COUNT_MATCHES = (
    "SELECT count(*) FROM (SELECT 1 FROM engram_entries e WHERE e.tsv @@ %(match)s::tsquery LIMIT %(cap)s) AS m"
)

NO_SEQUENTIAL_SCAN = "SET LOCAL enable_seqscan = off"

# ts_rank_cd normalization 1: divide by 1 + log(document length), as BM25 damps long documents.
RANK_NORMALIZATION = 1


def search_sql(
    match: str, rank: str, metadata: MetadataFilter, limit: int, now: Any
) -> tuple[str, dict[str, Any]]:
    """Full-text search. ``match`` is the tsquery that selects (namespace lexeme inside it,
    so the namespace is part of the GIN index condition); ``rank`` the one that scores."""
    where = ["e.tsv @@ %(match)s::tsquery", LIVE]
    params: dict[str, Any] = {"match": match, "rank": rank, "now": now, "limit": limit}
    if metadata:
        clause, extra = metadata_conditions(metadata)
        where.append(clause)
        params.update(extra)
    sql = (
        f"SELECT {ENTRY_COLUMNS}, ts_rank_cd(e.tsv, %(rank)s::tsquery, {RANK_NORMALIZATION}) AS score"
        f" FROM engram_entries e WHERE {' AND '.join(where)}"
        " ORDER BY score DESC, e.seq LIMIT %(limit)s"
    )
    return sql, params


# -- sessions and tasks ------------------------------------------------------------

UPSERT_SESSION = f"""
INSERT INTO engram_sessions ({SESSION_COLUMNS})
VALUES (%(id)s, %(status)s, %(metadata)s::json, %(started_at)s, %(ended_at)s, %(user_id)s, %(agent_id)s)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, metadata = excluded.metadata,
    started_at = excluded.started_at, ended_at = excluded.ended_at,
    user_id = excluded.user_id, agent_id = excluded.agent_id
"""
GET_SESSION = f"SELECT {SESSION_COLUMNS} FROM engram_sessions WHERE id = %(id)s"
ITER_SESSIONS = f"SELECT {SESSION_COLUMNS} FROM engram_sessions WHERE id > %(after)s ORDER BY id LIMIT %(limit)s"

UPSERT_TASK = f"""
INSERT INTO engram_tasks ({TASK_COLUMNS})
VALUES (%(id)s, %(agent_type)s, %(input)s::json, %(output)s::json, %(status)s, %(session_id)s,
        %(created_at)s, %(updated_at)s, %(completed_at)s)
ON CONFLICT (id) DO UPDATE SET agent_type = excluded.agent_type, input = excluded.input,
    output = excluded.output, status = excluded.status, session_id = excluded.session_id,
    created_at = excluded.created_at, updated_at = excluded.updated_at, completed_at = excluded.completed_at
"""
GET_TASK = f"SELECT {TASK_COLUMNS} FROM engram_tasks WHERE id = %(id)s"
ITER_TASKS = f"SELECT {TASK_COLUMNS} FROM engram_tasks WHERE id > %(after)s ORDER BY id LIMIT %(limit)s"


def list_sessions_sql(query: SessionQuery) -> tuple[str, dict[str, Any]]:
    clauses, params = given_named(
        [
            ("status", "status = %(status)s", query.status),
            ("ended_before", "ended_at < %(ended_before)s", query.ended_before),
            ("user_id", "user_id = %(user_id)s", query.user_id),
            ("agent_id", "agent_id = %(agent_id)s", query.agent_id),
        ]
    )
    order = "started_at, id" if query.sort == "oldest" else "started_at DESC, id"
    sql = (
        f"SELECT {SESSION_COLUMNS} FROM engram_sessions{where(clauses)}"
        f" ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    )
    return sql, {**params, "limit": query.limit, "offset": query.offset}


def list_tasks_sql(query: TaskQuery) -> tuple[str, dict[str, Any]]:
    clauses, params = given_named(
        [
            ("session_id", "session_id = %(session_id)s", query.session_id),
            ("status", "status = %(status)s", query.status),
        ]
    )
    sql = (
        f"SELECT {TASK_COLUMNS} FROM engram_tasks{where(clauses)}"
        " ORDER BY created_at DESC, id LIMIT %(limit)s OFFSET %(offset)s"
    )
    return sql, {**params, "limit": query.limit, "offset": query.offset}
