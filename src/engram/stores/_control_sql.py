"""The control plane's schema and queries, shared by the SQL control stores.

The tables are written once, here; what SQLite and PostgreSQL spell differently
is data (:class:`Dialect`). Queries are written with SQLite's ``?``
placeholders; ``stores/postgres/control.py`` turns them into ``%s``. Pure
builders returning ``(sql, params)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engram.stores.control_base import TRANSACTION_FIELDS, TransactionQuery


# -- schema ----------------------------------------------------------------------
@dataclass(frozen=True)
class Dialect:
    """The column types the two databases spell differently."""

    serial_key: str  # an integer primary key numbered by the database
    double: str  # a floating-point number


SQLITE_DIALECT = Dialect(serial_key="INTEGER PRIMARY KEY AUTOINCREMENT", double="REAL")
POSTGRES_DIALECT = Dialect(serial_key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", double="DOUBLE PRECISION")


def api_keys_table(roles: tuple[str, ...], name: str = "api_keys") -> str:
    """The keys table, allowing ``roles`` (SQLite rebuilds it under another name to change them)."""
    allowed = ", ".join(f"'{role}'" for role in roles)
    return f"""
    CREATE TABLE {name} (
        id           TEXT PRIMARY KEY,
        prefix       TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE,
        project_id   TEXT NOT NULL REFERENCES projects (id),
        role         TEXT NOT NULL CHECK (role IN ({allowed})),
        user_id      TEXT REFERENCES users (id) ON DELETE SET NULL,
        name         TEXT,
        created_at   TEXT NOT NULL,
        expires_at   TEXT,
        revoked_at   TEXT,
        last_used_at TEXT
    );
    """


API_KEYS_INDEX = "CREATE INDEX api_keys_by_project ON api_keys (project_id, created_at);\n"


def control_tables(dialect: Dialect, roles: tuple[str, ...]) -> str:
    """Users, projects, keys (allowing ``roles``), variables and the transaction log, with their indexes."""
    named = "\n".join(
        f"""
    CREATE TABLE {table} (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );"""
        for table in ("users", "projects")
    )
    return named + api_keys_table(roles) + API_KEYS_INDEX + f"""
    CREATE TABLE variables (
        project_id TEXT NOT NULL REFERENCES projects (id),
        name       TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (project_id, name)
    );
    CREATE TABLE transactions (
        id          {dialect.serial_key},
        at          TEXT NOT NULL,
        key_id      TEXT,
        key_prefix  TEXT,
        user_name   TEXT,
        project_id  TEXT,
        operation   TEXT NOT NULL,
        target      TEXT,
        outcome     TEXT NOT NULL,
        status      INTEGER NOT NULL,
        duration_ms {dialect.double} NOT NULL
    );
    CREATE INDEX transactions_by_time ON transactions (at);
    CREATE INDEX transactions_by_project ON transactions (project_id, at);
    """


# -- queries ---------------------------------------------------------------------

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
    conditions = query.conditions()
    where = [f"t.{field} {operator} ?" for field, operator, _ in conditions]
    params: list[Any] = [value for _, _, value in conditions]
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
    placeholders = ", ".join("?" for _ in TRANSACTION_FIELDS)
    return (
        f"INSERT INTO transactions ({', '.join(TRANSACTION_FIELDS)}) VALUES ({placeholders})",
        [record.get(c) for c in TRANSACTION_FIELDS],
    )
