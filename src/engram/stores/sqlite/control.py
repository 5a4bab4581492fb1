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
    API_KEYS_INDEX,
    INSERT_KEY,
    SQLITE_DIALECT,
    api_keys_table,
    control_tables,
    insert_key_params,
)
from engram.stores._control_sql_store import SQLControlStore
from engram.stores._driver_errors import SQLITE, translating
from engram.stores._files import create_private_file, ensure_directory
from engram.stores.control_base import KEY_ROLES
from engram.stores.sqlite.migrate import apply_migrations
from engram.stores.sqlite.store import parse_sqlite_url

if TYPE_CHECKING:
    from engram.config import Settings

MIGRATIONS: list[str] = [
    # 1: the whole control plane.
    control_tables(SQLITE_DIALECT, roles=("admin", "member")),
    # 2: the server_admin role. SQLite cannot alter a CHECK, so api_keys is rebuilt.
    # The keys that bootstrap() made (the generated first key, ENGRAM_ADMIN_KEY) become
    # server_admin, so an upgraded server keeps its administrator; other admin keys
    # stay project admins.
    api_keys_table(KEY_ROLES, name="api_keys_v2")
    + """
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
    """
    + API_KEYS_INDEX,
]


# -- the store ---------------------------------------------------------------------
class SQLiteControlStore(SQLControlStore):
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

    # -- API keys -----------------------------------------------------------------------
    def insert_first_key(self, key: dict[str, Any]) -> bool:
        """``BEGIN IMMEDIATE`` holds the database's write lock from the check to the insert."""
        with self.transaction("creating the first API key") as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE role = ? LIMIT 1", (key["role"],)).fetchone():
                return False
            conn.execute(INSERT_KEY, insert_key_params(key))
        return True

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
