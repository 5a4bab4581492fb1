"""The SQLite control-plane store (the :class:`~engram.stores.control_base.ControlStore` contract).

One SQLite file beside the base store (``engram-control.db`` next to
``engram.db``); ``path=None`` keeps one in-process database (tests). Schema
migrations are ordered data with a version table, like ``stores/sqlite/store.py``;
queries are built by pure functions ``(...) -> (sql, params)`` and run by
:class:`SQLiteControlStore`, which returns plain dicts (the server turns them
into models). Secrets never reach this module in clear: variables arrive
encrypted and API keys arrive hashed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.errors import BackendError
from engram.stores._control_sql import (
    INSERT_KEY,
    KEY_COLUMNS,
    KEY_FROM,
    insert_key_params,
    insert_transaction_sql,
    list_keys_sql,
    list_transactions_sql,
)
from engram.stores._driver_errors import SQLITE, translating
from engram.stores._files import create_private_file, ensure_directory
from engram.stores.control_base import ControlStore, TransactionQuery
from engram.stores.sqlite.migrate import apply_migrations
from engram.stores.sqlite.store import parse_sqlite_url

if TYPE_CHECKING:
    from engram.config import Settings

MIGRATIONS: list[str] = [
    # 1: the whole control plane.
    """
    CREATE TABLE users (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE projects (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        prefix       TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE,
        project_id   TEXT NOT NULL REFERENCES projects (id),
        role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
        user_id      TEXT REFERENCES users (id) ON DELETE SET NULL,
        name         TEXT,
        created_at   TEXT NOT NULL,
        expires_at   TEXT,
        revoked_at   TEXT,
        last_used_at TEXT
    );
    CREATE INDEX api_keys_by_project ON api_keys (project_id, created_at);
    CREATE TABLE variables (
        project_id TEXT NOT NULL REFERENCES projects (id),
        name       TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (project_id, name)
    );
    CREATE TABLE transactions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT NOT NULL,
        key_id      TEXT,
        key_prefix  TEXT,
        user_name   TEXT,
        project_id  TEXT,
        operation   TEXT NOT NULL,
        target      TEXT,
        outcome     TEXT NOT NULL,
        status      INTEGER NOT NULL,
        duration_ms REAL NOT NULL
    );
    CREATE INDEX transactions_by_time ON transactions (at);
    CREATE INDEX transactions_by_project ON transactions (project_id, at);
    """,
    # 2: the server_admin role. SQLite cannot alter a CHECK, so api_keys is rebuilt.
    # The keys that bootstrap() made (the generated first key, ENGRAM_ADMIN_KEY) become
    # server_admin, so an upgraded server keeps its administrator; other admin keys
    # stay project admins.
    """
    CREATE TABLE api_keys_v2 (
        id           TEXT PRIMARY KEY,
        prefix       TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE,
        project_id   TEXT NOT NULL REFERENCES projects (id),
        role         TEXT NOT NULL CHECK (role IN ('member', 'admin', 'server_admin')),
        user_id      TEXT REFERENCES users (id) ON DELETE SET NULL,
        name         TEXT,
        created_at   TEXT NOT NULL,
        expires_at   TEXT,
        revoked_at   TEXT,
        last_used_at TEXT
    );
    INSERT INTO api_keys_v2
        (id, prefix, hash, project_id, role, user_id, name, created_at, expires_at, revoked_at, last_used_at)
    SELECT id, prefix, hash, project_id,
           CASE WHEN role = 'admin' AND name IN ('first admin key', 'ENGRAM_ADMIN_KEY')
                     AND project_id = (SELECT id FROM projects WHERE name = 'default')
                THEN 'server_admin' ELSE role END,
           user_id, name, created_at, expires_at, revoked_at, last_used_at
    FROM api_keys;
    DROP TABLE api_keys;
    ALTER TABLE api_keys_v2 RENAME TO api_keys;
    CREATE INDEX api_keys_by_project ON api_keys (project_id, created_at);
    """,
]

# -- the store ---------------------------------------------------------------------
class SQLiteControlStore(ControlStore):
    """Control-plane persistence over one SQLite database.

    ``path=None`` keeps it in memory (tests; ``memory://`` servers have their own store).
    One connection behind a lock: control-plane work is a handful of indexed
    lookups per request, and one connection keeps an in-memory database whole.
    """

    def __init__(self, path: str | Path | None, *, busy_timeout: float = 30.0):
        self.path = None if path is None else Path(path)
        try:
            if self.path is not None:
                ensure_directory(self.path.parent)
                create_private_file(self.path)  # owner-only; the -wal and -shm files take its mode
            self._conn = sqlite3.connect(
                ":memory:" if self.path is None else self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if self.path is not None:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open the control database {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._closed = False
        self._migrate()

    @classmethod
    def for_server(cls, base_url: str, *, settings: Settings | None = None) -> SQLiteControlStore:
        """``sqlite:///dir/engram.db`` -> ``dir/engram-control.db``."""
        path, _ = parse_sqlite_url(base_url)
        return cls(path.with_name(f"{path.stem}-control.db"))

    # -- plumbing -------------------------------------------------------------------
    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` write transaction; driver errors become engram errors."""
        with self._lock, translating(SQLITE, action):
            if self._closed:
                raise BackendError("the control database is closed")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, action: str, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock, translating(SQLITE, action):
            if self._closed:
                raise BackendError("the control database is closed")
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    def execute(self, action: str, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement in its own transaction; returns the rows changed."""
        with self.transaction(action) as conn:
            return conn.execute(sql, params).rowcount

    def _migrate(self) -> None:
        with self.transaction("migrating the control database") as conn:
            apply_migrations(conn, "engram_control_schema", MIGRATIONS, "the control database")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # -- users ------------------------------------------------------------------------
    def insert_user(self, user: dict[str, Any]) -> None:
        self.execute(
            "creating a user", "INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)",
            (user["id"], user["name"], user["created_at"]),
        )

    def users(self) -> list[dict[str, Any]]:
        return self.query("listing users", "SELECT id, name, created_at FROM users ORDER BY name")

    def user_by_name(self, name: str) -> dict[str, Any] | None:
        rows = self.query("reading a user", "SELECT id, name, created_at FROM users WHERE name = ?", (name,))
        return rows[0] if rows else None

    def delete_user(self, user_id: str, *, revoked_at: str) -> int:
        """Delete a user and revoke every key issued to them; returns the keys revoked."""
        with self.transaction("deleting a user") as conn:
            revoked = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (revoked_at, user_id)
            ).rowcount
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        return revoked

    # -- projects ---------------------------------------------------------------------
    def insert_project(self, project: dict[str, Any]) -> None:
        self.execute(
            "creating a project", "INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)",
            (project["id"], project["name"], project["created_at"]),
        )

    def projects(self) -> list[dict[str, Any]]:
        return self.query("listing projects", "SELECT id, name, created_at FROM projects ORDER BY name")

    def project(self, *, id: str | None = None, name: str | None = None) -> dict[str, Any] | None:
        column, value = ("id", id) if id is not None else ("name", name)
        rows = self.query(
            "reading a project", f"SELECT id, name, created_at FROM projects WHERE {column} = ?", (value,)
        )
        return rows[0] if rows else None

    # -- API keys -----------------------------------------------------------------------
    def insert_key(self, key: dict[str, Any]) -> None:
        with self.transaction("creating an API key") as conn:
            conn.execute(INSERT_KEY, insert_key_params(key))

    def insert_first_key(self, key: dict[str, Any]) -> bool:
        """``BEGIN IMMEDIATE`` holds the database's write lock from the check to the insert."""
        with self.transaction("creating the first API key") as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE role = ? LIMIT 1", (key["role"],)).fetchone():
                return False
            conn.execute(INSERT_KEY, insert_key_params(key))
        return True

    def key_by_hash(self, digest: str) -> dict[str, Any] | None:
        rows = self.query(
            "checking an API key", f"SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.hash = ?", (digest,)
        )
        return rows[0] if rows else None

    def key(self, key_id: str) -> dict[str, Any] | None:
        rows = self.query("reading an API key", f"SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.id = ?", (key_id,))
        return rows[0] if rows else None

    def keys(self, *, project_id: str | None = None, include_revoked: bool = False) -> list[dict[str, Any]]:
        sql, params = list_keys_sql(project_id, include_revoked)
        return self.query("listing API keys", sql, params)

    def count_keys(self, role: str) -> int:
        """Keys ever issued with ``role``, revoked and expired ones included."""
        return self.query("counting API keys", "SELECT count(*) AS n FROM api_keys WHERE role = ?", (role,))[0]["n"]

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool:
        return bool(
            self.execute(
                "revoking an API key",
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (revoked_at, key_id),
            )
        )

    def touch_key(self, key_id: str, *, used_at: str) -> None:
        self.execute("recording API key use", "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (used_at, key_id))

    # -- variables (ciphertext only) -----------------------------------------------------
    def put_variable(self, project_id: str, name: str, seal: Callable[[], str], *, now: str) -> dict[str, Any]:
        """Store the ciphertext ``seal()`` returns; it runs inside the write transaction.

        A key rotation re-encrypts inside its own write transaction, so a value
        sealed here is either re-encrypted by it or sealed after it, with its key.
        """
        with self.transaction("storing a variable") as conn:
            conn.execute(
                "INSERT INTO variables (project_id, name, ciphertext, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (project_id, name) DO UPDATE SET ciphertext = excluded.ciphertext,"
                " updated_at = excluded.updated_at",
                (project_id, name, seal(), now, now),
            )
            row = conn.execute(
                "SELECT name, created_at, updated_at FROM variables WHERE project_id = ? AND name = ?",
                (project_id, name),
            ).fetchone()
        return dict(row)

    def variable(self, project_id: str, name: str) -> dict[str, Any] | None:
        rows = self.query(
            "reading a variable",
            "SELECT name, ciphertext, created_at, updated_at FROM variables WHERE project_id = ? AND name = ?",
            (project_id, name),
        )
        return rows[0] if rows else None

    def variables(self, project_id: str) -> list[dict[str, Any]]:
        """Names and times only: the ciphertext is never part of a listing."""
        return self.query(
            "listing variables",
            "SELECT name, created_at, updated_at FROM variables WHERE project_id = ? ORDER BY name",
            (project_id,),
        )

    def delete_variable(self, project_id: str, name: str) -> bool:
        return bool(
            self.execute(
                "deleting a variable", "DELETE FROM variables WHERE project_id = ? AND name = ?", (project_id, name)
            )
        )

    def replace_ciphertexts(self, reseal: Callable[[str, str, str], str]) -> int:
        """Rewrite every variable of every project as ``reseal(project_id, name, ciphertext)``.

        Read and write are one transaction (key rotation): no value written
        meanwhile is missed, and a failure part-way changes nothing. Returns the
        number of variables.
        """
        with self.transaction("re-encrypting variables") as conn:
            rows = conn.execute("SELECT project_id, name, ciphertext FROM variables").fetchall()
            conn.executemany(
                "UPDATE variables SET ciphertext = ? WHERE project_id = ? AND name = ?",
                [(reseal(p, n, c), p, n) for p, n, c in rows],
            )
        return len(rows)

    # -- transaction log -----------------------------------------------------------------
    def record_transaction(self, record: dict[str, Any]) -> None:
        sql, params = insert_transaction_sql(record)
        self.execute("recording a transaction", sql, params)

    def transactions(self, query: TransactionQuery = TransactionQuery()) -> list[dict[str, Any]]:
        sql, params = list_transactions_sql(query)
        return self.query("listing transactions", sql, params)

    def prune_transactions(self, *, before: str) -> int:
        return self.execute("pruning the transaction log", "DELETE FROM transactions WHERE at < ?", (before,))
