"""Pure SQL builders for the SQLite backend: ``(...) -> (sql, params)``, no I/O.

Values are always bound parameters. Metadata keys become JSON paths that are
bound too, after validation against a strict pattern in ``engram.validation``.
"""

from __future__ import annotations

from typing import Any

from engram._time import to_iso
from engram.stores._where import given, where
from engram.stores.base import EntryQuery, MetadataFilter, SessionQuery, TaskQuery

ENTRY_COLUMNS = (
    "e.id, e.key, e.namespace, e.content, e.metadata, e.created_at, e.updated_at, e.expires_at, e.context"
)
SESSION_COLUMNS = "id, status, metadata, started_at, ended_at, user_id, agent_id"
TASK_COLUMNS = (
    "id, agent_type, input, output, status, session_id, created_at, updated_at, completed_at"
)
UPSERT_SESSION = (
    f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status, metadata = excluded.metadata,"
    " started_at = excluded.started_at, ended_at = excluded.ended_at,"
    " user_id = excluded.user_id, agent_id = excluded.agent_id"
)
GET_SESSION = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"
UPSERT_TASK = (
    f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET agent_type = excluded.agent_type, input = excluded.input,"
    " output = excluded.output, status = excluded.status, session_id = excluded.session_id,"
    " created_at = excluded.created_at, updated_at = excluded.updated_at,"
    " completed_at = excluded.completed_at"
)
GET_TASK = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"

# BM25 column weights for (ns, key, content): the namespace token never scores.
BM25_WEIGHTS = (0.0, 1.0, 1.0)

LIVE = "(e.expires_at IS NULL OR e.expires_at > ?)"

# ORDER BY of each entry listing order; both walk the (namespace, updated_at) index.
ENTRY_ORDER_BY = {
    "updated_desc": "e.updated_at DESC, e.rowid DESC",
    "updated_asc": "e.updated_at ASC, e.rowid ASC",
}
NAMESPACE_COUNTS = (
    f"SELECT e.namespace, count(*) FROM entries e WHERE {LIVE} GROUP BY e.namespace ORDER BY e.namespace"
)

UPSERT_ENTRY = """
INSERT INTO entries (id, namespace, key, content, metadata, created_at, updated_at, expires_at, ns, context)
VALUES (?, ?, ?, ?, coalesce(?5, '{}'), ?, ?, ?, ?, ?)
ON CONFLICT (namespace, key) DO UPDATE SET
    id = CASE WHEN entries.expires_at <= excluded.updated_at THEN excluded.id ELSE entries.id END,
    created_at = CASE WHEN entries.expires_at <= excluded.updated_at
                      THEN excluded.created_at ELSE entries.created_at END,
    content = excluded.content,
    context = excluded.context,
    metadata = CASE WHEN ?5 IS NOT NULL OR entries.expires_at <= excluded.updated_at
                    THEN excluded.metadata ELSE entries.metadata END,
    updated_at = excluded.updated_at,
    expires_at = excluded.expires_at
"""
# Metadata NULL (not given) keeps a live entry's metadata; '{}' clears it.
UPSERT_ENTRY_RETURNING = UPSERT_ENTRY + " RETURNING id, created_at, metadata"


def json_path(key: str) -> str:
    """``a.b`` -> ``$."a"."b"`` (keys were validated: no quotes can occur)."""
    return "$" + "".join(f'."{part}"' for part in key.split("."))


def metadata_conditions(metadata: MetadataFilter, column: str = "e.metadata") -> tuple[str, list[Any]]:
    """Equality on JSON values, type-aware (``True`` does not equal ``1``)."""
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in metadata.items():
        path = json_path(key)
        if value is None:
            clauses.append(f"json_type({column}, ?) = 'null'")
            params.append(path)
        elif isinstance(value, bool):
            clauses.append(f"json_type({column}, ?) = ?")
            params += [path, "true" if value else "false"]
        elif isinstance(value, (int, float)):
            clauses.append(
                f"json_type({column}, ?) IN ('integer', 'real') AND json_extract({column}, ?) = ?"
            )
            params += [path, path, value]
        else:
            clauses.append(f"json_type({column}, ?) = 'text' AND json_extract({column}, ?) = ?")
            params += [path, path, value]
    return " AND ".join(clauses), params


def list_entries_sql(query: EntryQuery, now: str) -> tuple[str, list[Any]]:
    where = [LIVE]
    params: list[Any] = [now]
    if query.namespace is not None:
        where.append("e.namespace = ?")
        params.append(query.namespace)
    if query.key_prefix:
        # substr() instead of LIKE: no wildcard escaping, case-sensitive like keys.
        where.append("substr(e.key, 1, ?) = ?")
        params += [len(query.key_prefix), query.key_prefix]
    if query.metadata:
        clause, extra = metadata_conditions(query.metadata)
        where.append(clause)
        params += extra
    sql = (
        f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE {' AND '.join(where)}"
        f" ORDER BY {ENTRY_ORDER_BY[query.order]} LIMIT ? OFFSET ?"
    )
    return sql, params + [query.limit, query.offset]


def search_sql(
    match: str, metadata: MetadataFilter, limit: int, now: str
) -> tuple[str, list[Any]]:
    """Full-text search; ``match`` already holds the namespace token (inside the index)."""
    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    where = ["entries_fts MATCH ?", LIVE]
    params: list[Any] = [match, now]
    if metadata:
        clause, extra = metadata_conditions(metadata)
        where.append(clause)
        params += extra
    sql = (
        f"SELECT {ENTRY_COLUMNS}, bm25(entries_fts, {weights}) AS rank"
        " FROM entries_fts JOIN entries e ON e.rowid = entries_fts.rowid"
        f" WHERE {' AND '.join(where)} ORDER BY rank LIMIT ?"
    )
    return sql, params + [limit]


def search_top_sql(match: str, k: int, now: str) -> tuple[str, list[Any]]:
    """Full-text search without metadata filters, ranked inside the index first.

    The ``k`` best index rows are picked before ``entries`` is read, so only
    they pay the join (the full join cost ~1 ms a query at 1M entries). Each
    row ends with a flag: live (1) or expired (0). The caller keeps the live
    ones and, when expired rows leave fewer than it wants out of ``k``, asks
    again with a larger ``k``.
    """
    return _SEARCH_TOP, [now, match, k]


_SEARCH_TOP = (
    f"SELECT {ENTRY_COLUMNS}, f.score AS rank, {LIVE}"
    f" FROM (SELECT rowid, bm25(entries_fts, {', '.join(str(w) for w in BM25_WEIGHTS)}) AS score"
    " FROM entries_fts WHERE entries_fts MATCH ? ORDER BY score LIMIT ?) AS f"
    " JOIN entries e ON e.rowid = f.rowid ORDER BY f.score"
)


def list_sessions_sql(query: SessionQuery) -> tuple[str, list[Any]]:
    clauses, params = given(
        [
            ("status = ?", query.status),
            ("ended_at IS NOT NULL AND ended_at < ?", to_iso(query.ended_before)),
            ("user_id = ?", query.user_id),
            ("agent_id = ?", query.agent_id),
        ]
    )
    order = "started_at, id" if query.sort == "oldest" else "started_at DESC, id"
    sql = f"SELECT {SESSION_COLUMNS} FROM sessions{where(clauses)} ORDER BY {order} LIMIT ? OFFSET ?"
    return sql, params + [query.limit, query.offset]


def list_tasks_sql(query: TaskQuery) -> tuple[str, list[Any]]:
    clauses, params = given([("session_id = ?", query.session_id), ("status = ?", query.status)])
    sql = f"SELECT {TASK_COLUMNS} FROM tasks{where(clauses)} ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
    return sql, params + [query.limit, query.offset]
