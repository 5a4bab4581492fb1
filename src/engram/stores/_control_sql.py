"""The control plane's queries (keys, transaction log), shared by the SQL control stores.

Written with SQLite's ``?`` placeholders; ``stores/postgres/control.py`` turns
them into ``%s``. Pure builders returning ``(sql, params)``.
"""

from __future__ import annotations

from typing import Any

from engram.stores.control_base import TransactionQuery

KEY_COLUMNS = (
    "k.id, k.prefix, k.project_id, p.name AS project, k.role, k.user_id, u.name AS user, k.name,"
    " k.created_at, k.expires_at, k.revoked_at, k.last_used_at"
)
KEY_FROM = "api_keys k JOIN projects p ON p.id = k.project_id LEFT JOIN users u ON u.id = k.user_id"
TRANSACTION_COLUMNS = (
    "t.id, t.at, t.key_id, t.key_prefix, t.user_name, t.project_id, p.name AS project, t.operation,"
    " t.target, t.outcome, t.status, t.duration_ms"
)
INSERT_KEY = (
    "INSERT INTO api_keys (id, prefix, hash, project_id, role, user_id, name, created_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# -- pure query builders ---------------------------------------------------------
def list_keys_sql(project_id: str | None, include_revoked: bool) -> tuple[str, list[Any]]:
    where, params = [], []
    if project_id is not None:
        where.append("k.project_id = ?")
        params.append(project_id)
    if not include_revoked:
        where.append("k.revoked_at IS NULL")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {KEY_COLUMNS} FROM {KEY_FROM}{clause} ORDER BY k.created_at, k.id", params


def list_transactions_sql(query: TransactionQuery) -> tuple[str, list[Any]]:
    """Newest first; every filter is an equality or a time bound, all bound parameters."""
    equalities = query.equalities()
    where = [f"t.{column} = ?" for column in equalities]
    params: list[Any] = list(equalities.values())
    if query.since is not None:
        where.append("t.at >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append("t.at < ?")
        params.append(query.until)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = (
        f"SELECT {TRANSACTION_COLUMNS} FROM transactions t LEFT JOIN projects p ON p.id = t.project_id"
        f"{clause} ORDER BY t.id DESC LIMIT ? OFFSET ?"
    )
    return sql, params + [query.limit, query.offset]


def insert_key_params(key: dict[str, Any]) -> tuple[Any, ...]:
    """The values of :data:`INSERT_KEY` (``user_id``, ``name`` and ``expires_at`` are optional)."""
    return (
        key["id"], key["prefix"], key["hash"], key["project_id"], key["role"], key.get("user_id"),
        key.get("name"), key["created_at"], key.get("expires_at"),
    )


def insert_transaction_sql(record: dict[str, Any]) -> tuple[str, list[Any]]:
    columns = (
        "at", "key_id", "key_prefix", "user_name", "project_id", "operation", "target", "outcome",
        "status", "duration_ms",
    )
    placeholders = ", ".join("?" for _ in columns)
    return (
        f"INSERT INTO transactions ({', '.join(columns)}) VALUES ({placeholders})",
        [record.get(c) for c in columns],
    )
