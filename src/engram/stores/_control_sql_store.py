"""What the SQLite and PostgreSQL control stores do alike: every method that is one query.

Both keep the same tables (``stores/_control_sql.py``) and run qmark SQL through
:meth:`SQLControlStore.query` and :meth:`SQLControlStore.execute`; each store
adds its own opening, migrations and the writes its database locks its own way
(the first key, sealing a variable, re-encrypting them all).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from engram.stores._control_sql import (
    INSERT_KEY,
    KEY_COLUMNS,
    KEY_FROM,
    insert_key_params,
    insert_transaction_sql,
    list_keys_sql,
    list_transactions_sql,
)
from engram.stores.control_base import ControlStore, Row, TransactionQuery


class SQLControlStore(ControlStore):
    """The one-query methods of the contract over :meth:`query` and :meth:`execute`."""

    @abstractmethod
    def query(self, action: str, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read (qmark ``sql``); driver errors become engram errors naming ``action``."""

    @abstractmethod
    def execute(self, action: str, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement (qmark ``sql``), committed; returns the rows changed."""

    @abstractmethod
    def transaction(self, action: str) -> AbstractContextManager[Any]:
        """A write transaction on a DB-API connection, committed when the block ends."""

    @staticmethod
    def native(sql: str) -> str:
        """Qmark ``sql`` with the driver's placeholders, for a statement run on a :meth:`transaction`'s
        connection (SQLite's are qmark)."""
        return sql

    def _first(self, action: str, sql: str, params: Sequence[Any]) -> Row | None:
        rows = self.query(action, sql, params)
        return rows[0] if rows else None

    # -- users and projects: the same columns ------------------------------------------
    def _insert_named(self, action: str, table: str, row: Row) -> None:
        self.execute(
            action, f"INSERT INTO {table} (id, name, created_at) VALUES (?, ?, ?)",
            (row["id"], row["name"], row["created_at"]),
        )

    def insert_user(self, user: Row) -> None:
        self._insert_named("creating a user", "users", user)

    def users(self) -> list[Row]:
        return self.query("listing users", "SELECT id, name, created_at FROM users ORDER BY name")

    def user_by_name(self, name: str) -> Row | None:
        return self._first("reading a user", "SELECT id, name, created_at FROM users WHERE name = ?", (name,))

    def delete_user(self, user_id: str, *, revoked_at: str) -> int:
        """Delete a user and revoke every key issued to them; returns the keys revoked."""
        with self.transaction("deleting a user") as conn:
            revoked = conn.execute(
                self.native("UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"),
                (revoked_at, user_id),
            ).rowcount
            conn.execute(self.native("DELETE FROM users WHERE id = ?"), (user_id,))
        return revoked

    def insert_project(self, project: Row) -> None:
        self._insert_named("creating a project", "projects", project)

    def projects(self) -> list[Row]:
        return self.query("listing projects", "SELECT id, name, created_at FROM projects ORDER BY name")

    def project(self, *, id: str | None = None, name: str | None = None) -> Row | None:
        column, value = ("id", id) if id is not None else ("name", name)
        return self._first(
            "reading a project", f"SELECT id, name, created_at FROM projects WHERE {column} = ?", (value,)
        )

    # -- API keys -------------------------------------------------------------------------
    def insert_key(self, key: Row) -> None:
        self.execute("creating an API key", INSERT_KEY, insert_key_params(key))

    def key_by_hash(self, digest: str) -> Row | None:
        return self._first("checking an API key", f"SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.hash = ?", (digest,))

    def key(self, key_id: str) -> Row | None:
        return self._first("reading an API key", f"SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.id = ?", (key_id,))

    def keys(self, *, project_id: str | None = None, include_revoked: bool = False) -> list[Row]:
        sql, params = list_keys_sql(project_id, include_revoked)
        return self.query("listing API keys", sql, params)

    def count_keys(self, role: str) -> int:
        """Keys ever issued with ``role``, revoked and expired ones included."""
        return self.query("counting API keys", "SELECT count(*) AS n FROM api_keys WHERE role = ?", (role,))[0]["n"]

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool:
        return bool(
            self.execute(
                "revoking an API key", "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (revoked_at, key_id),
            )
        )

    def touch_key(self, key_id: str, *, used_at: str) -> None:
        self.execute("recording API key use", "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (used_at, key_id))

    # -- variables (ciphertext only) ---------------------------------------------------------
    def variable(self, project_id: str, name: str) -> Row | None:
        return self._first(
            "reading a variable",
            "SELECT name, ciphertext, created_at, updated_at FROM variables WHERE project_id = ? AND name = ?",
            (project_id, name),
        )

    def variables(self, project_id: str) -> list[Row]:
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

    # -- transaction log -----------------------------------------------------------------------
    def record_transaction(self, record: Row) -> None:
        sql, params = insert_transaction_sql(record)
        self.execute("recording a transaction", sql, params)

    def transactions(self, query: TransactionQuery = TransactionQuery()) -> list[Row]:
        sql, params = list_transactions_sql(query)
        return self.query("listing transactions", sql, params)

    def prune_transactions(self, *, before: str) -> int:
        return self.execute("pruning the transaction log", "DELETE FROM transactions WHERE at < ?", (before,))
