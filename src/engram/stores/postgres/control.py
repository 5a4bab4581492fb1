"""The PostgreSQL control-plane store (the :class:`~engram.stores.control_base.ControlStore` contract).

Every server process on one database shares these rows, so several servers
behave as one: a key revoked through one is refused by all at once (keys are
read from here on every request; nothing is cached), the first admin key is
issued once (:meth:`PostgresControlStore.insert_first_key` under an advisory
lock), failed authentications are counted in one table
(:meth:`PostgresControlStore.count_auth_failure`), and each write appends one
log row whichever process served it.

Where: the tables live in their own schema beside the base store's,
``<schema>_control`` (``engram_control`` when the base URL names no schema), so
they never mix with a project's data; each project other than ``default`` gets
its schema ``<schema>_p_<project id>`` (see ``engram.server.tenancy``).
Migrations are ordered data under the advisory lock the PostgreSQL store uses.
Times are stored as the ISO-8601 text the contract speaks (always UTC, so text
order is time order). The queries are the SQLite store's pure builders; they
are written with ``?`` placeholders, which :func:`pg` turns into psycopg's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import sql as pgsql
from psycopg.rows import dict_row

from engram.config import DBConnectionSettings
from engram.errors import BackendError, ConfigError
from engram.stores._control_sql import INSERT_KEY, POSTGRES_DIALECT, control_tables, insert_key_params
from engram.stores._control_sql_store import SQLControlStore
from engram.stores.control_base import KEY_ROLES, Row
from engram.stores.postgres import sql as q
from engram.stores.postgres.errors import PostgresErrors, connect_problem
from engram.stores.postgres.store import (
    connection_options,
    parse_postgres_url,
    pool_arguments,
)

if TYPE_CHECKING:
    from engram.config import Settings

# Schema names are at most 63 bytes: a base schema of at most 28 characters leaves room
# for "_p_" and a 32-character project id.
_PREFIX_MAX = 28
# Keys of advisory locks, beside the migration lock: the first admin key is made once ("ectl");
# one subject's failed authentications are counted one server at a time ("eauf").
FIRST_KEY_LOCK = 0x6563746C
AUTH_FAILURE_LOCK = 0x65617566

MIGRATIONS: list[str] = [
    # 1: the whole control plane, as the SQLite store's version 2, the shared auth-failure
    # counts and the dashboard's sign-in sessions (times of both: epoch seconds).
    control_tables(POSTGRES_DIALECT, roles=KEY_ROLES)
    + """
    CREATE TABLE auth_failures (
        subject TEXT NOT NULL,
        at      DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX auth_failures_by_subject ON auth_failures (subject, at);
    CREATE TABLE web_sessions (
        digest  TEXT PRIMARY KEY,
        key_id  TEXT NOT NULL,
        csrf    TEXT NOT NULL,
        seq     BIGINT GENERATED ALWAYS AS IDENTITY,
        expires DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX web_sessions_by_age ON web_sessions (seq);
    """,
]


def pg(sql: str) -> str:
    """A qmark query (the SQLite builders') with psycopg's ``%s`` placeholders (none holds a literal ? or %)."""
    return sql.replace("?", "%s")


def schema_prefix(base_url: str) -> str:
    """The stem of the control and project schema names of a server on ``base_url``.

    Raises:
        ConfigError: the URL's schema is longer than the derived names allow.
    """
    parts = urlsplit(base_url)
    schema = dict(parse_qsl(parts.query)).get("schema") or "engram"
    if len(schema) > _PREFIX_MAX:
        raise ConfigError(
            f"the server's schema {schema!r} is {len(schema)} characters; a server's is at most {_PREFIX_MAX} "
            "(its projects' schemas add '_p_' and a 32-character id): choose a shorter schema= in the URL"
        )
    return schema


def control_schema(base_url: str) -> str:
    return f"{schema_prefix(base_url)}_control"


def project_schema(base_url: str, project_id: str) -> str:
    """The schema holding one project's data (ids are 32 hex digits, so the name is valid)."""
    return f"{schema_prefix(base_url)}_p_{project_id}"


def with_schema(base_url: str, schema: str) -> str:
    """``base_url`` with its ``schema`` option set to ``schema`` (every other option kept)."""
    parts = urlsplit(base_url)
    options = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    options.append(("schema", schema))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(options), parts.fragment))


class PostgresControlStore(SQLControlStore):
    """Control-plane persistence in one PostgreSQL schema, shared by every server process on the database.

    Its own small pool (``db_connection_settings``, as every store): control work is a
    few indexed lookups per request.
    """

    def __init__(self, url: str, *, pool: DBConnectionSettings | None = None, connect_timeout: float = 20.0):
        conn_url, schema, self.pool_settings = parse_postgres_url(url, pool or DBConnectionSettings())
        if schema is None:
            raise ConfigError("the PostgreSQL control store needs a schema (schema=... in its URL)")
        self.schema = schema
        parts = urlsplit(conn_url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"
        self._translated = PostgresErrors(self._where, self.pool_settings)
        kwargs: dict[str, Any] = {"autocommit": True, "options": connection_options(schema), "row_factory": dict_row}
        if "connect_timeout" not in conn_url:
            kwargs["connect_timeout"] = max(1, round(connect_timeout))
        conninfo = psycopg.conninfo.make_conninfo(conn_url)
        with self._translated("opening the control database"):
            try:
                first = psycopg.connect(conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                limit = self.pool_settings.pool_size + self.pool_settings.max_overflow
                raise BackendError(connect_problem(exc, self._where, parts.path.lstrip("/"), limit)) from exc
            try:
                self._migrate(first)
            finally:
                first.close()
        self._pool = psycopg_pool.ConnectionPool(
            conninfo, kwargs=kwargs, open=True, name=f"engram-control:{self._where}",
            **pool_arguments(self.pool_settings),
        )
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def for_server(cls, base_url: str, *, settings: Settings | None = None) -> PostgresControlStore:
        """``postgresql://.../db?schema=s`` -> the schema ``s_control`` of that database."""
        url = with_schema(base_url, control_schema(base_url))
        if settings is None:
            return cls(url)
        return cls(url, pool=settings.db_connection_settings, connect_timeout=settings.db_connect_timeout)

    # -- plumbing -------------------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Ordered migrations and a version table, under the PostgreSQL store's advisory lock."""
        with conn.transaction():
            conn.execute(q.LOCK_MIGRATIONS, (q.MIGRATION_LOCK, self.schema))
            conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(self.schema)))
            conn.execute("CREATE TABLE IF NOT EXISTS engram_control_schema (version integer NOT NULL)")
            row = conn.execute("SELECT version FROM engram_control_schema FOR UPDATE").fetchone()
            version = row["version"] if row else 0
            if version > len(MIGRATIONS):
                raise ConfigError(
                    f"the engram control schema {self.schema} at {self._where} is version {version}, newer than "
                    f"this engram ({len(MIGRATIONS)}): upgrade engram"
                )
            for script in MIGRATIONS[version:]:
                conn.execute(script)
            if row is None:
                conn.execute("INSERT INTO engram_control_schema (version) VALUES (%s)", (len(MIGRATIONS),))
            elif version != len(MIGRATIONS):
                conn.execute("UPDATE engram_control_schema SET version = %s", (len(MIGRATIONS),))

    @contextmanager
    def _connection(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise BackendError(f"{action} failed: the control database is closed")
        with self._translated(action), self._pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """One transaction; driver errors become engram errors."""
        with self._connection(action) as conn, conn.transaction():
            yield conn

    native = staticmethod(pg)

    def query(self, action: str, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._connection(action) as conn:
            return conn.execute(pg(sql), params).fetchall()

    def execute(self, action: str, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement (autocommit); returns the rows changed."""
        with self._connection(action) as conn:
            return conn.execute(pg(sql), params).rowcount

    def close(self) -> None:
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._pool.close()

    # -- API keys -------------------------------------------------------------------------------
    def insert_first_key(self, key: Row) -> bool:
        """Insert ``key`` unless a key of its role was ever issued; one process wins, however many start."""
        with self.transaction("creating the first API key") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (FIRST_KEY_LOCK, self.schema))
            if conn.execute("SELECT 1 FROM api_keys WHERE role = %s LIMIT 1", (key["role"],)).fetchone():
                return False
            conn.execute(pg(INSERT_KEY), insert_key_params(key))
        return True

    # -- variables (ciphertext only) ------------------------------------------------------------
    def put_variable(self, project_id: str, name: str, seal: Callable[[], str], *, now: str) -> Row:
        """Store the ciphertext ``seal()`` returns, sealed after this transaction holds the table's
        ROW EXCLUSIVE lock, which a rotation's EXCLUSIVE lock waits for (and the other way round)."""
        with self.transaction("storing a variable") as conn:
            conn.execute("LOCK TABLE variables IN ROW EXCLUSIVE MODE")
            return conn.execute(
                "INSERT INTO variables (project_id, name, ciphertext, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (project_id, name) DO UPDATE SET"
                " ciphertext = excluded.ciphertext, updated_at = excluded.updated_at"
                " RETURNING name, created_at, updated_at",
                (project_id, name, seal(), now, now),
            ).fetchone()

    def replace_ciphertexts(self, reseal: Callable[[str, str, str], str]) -> int:
        """Rewrite every variable in one transaction holding the table exclusively (no write in between)."""
        with self.transaction("re-encrypting variables") as conn:
            conn.execute("LOCK TABLE variables IN EXCLUSIVE MODE")
            rows = conn.execute("SELECT project_id, name, ciphertext FROM variables").fetchall()
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE variables SET ciphertext = %s WHERE project_id = %s AND name = %s",
                    [(reseal(r["project_id"], r["name"], r["ciphertext"]), r["project_id"], r["name"]) for r in rows],
                )
        return len(rows)

    # -- failed authentications, counted for every server on the database ------------------------------
    def count_auth_failure(
        self, subjects: Sequence[str], *, now: float, window: float, limit: int
    ) -> tuple[int, float] | None:
        """Count one failure of each subject, unless one already has ``limit`` within ``window`` seconds.

        Returns None when counted, else the index of the first subject at the
        limit and the time (epoch seconds) of its oldest failure still counted,
        which says when it may try again. Subjects are locked in sorted order, so servers counting at
        once neither overshoot the limit nor deadlock.
        """
        with self.transaction("counting a failed authentication") as conn:
            for subject in sorted(subjects):
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (AUTH_FAILURE_LOCK, subject))
            conn.execute(
                "DELETE FROM auth_failures WHERE subject = ANY(%s) AND at <= %s", (list(subjects), now - window)
            )
            for index, subject in enumerate(subjects):
                row = conn.execute(
                    "SELECT count(*) AS n, min(at) AS oldest FROM auth_failures WHERE subject = %s", (subject,)
                ).fetchone()
                if row["n"] >= limit:
                    return index, row["oldest"]
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO auth_failures (subject, at) VALUES (%s, %s)", [(s, now) for s in subjects]
                )
        return None

    def prune_auth_failures(self, *, before: float) -> int:
        """Forget failures older than ``before`` (epoch seconds) of subjects that stopped failing."""
        with self._connection("pruning failed authentications") as conn:
            return conn.execute("DELETE FROM auth_failures WHERE at < %s", (before,)).rowcount

    # -- dashboard sign-ins, valid on every server -------------------------------------------------------
    def put_web_session(self, session: Row, *, now: float, max_sessions: int) -> None:
        """Add a sign-in (``digest, key_id, csrf, expires``), forget expired ones and the oldest past ``max_sessions``."""
        with self.transaction("signing in to the dashboard") as conn:
            conn.execute(
                "INSERT INTO web_sessions (digest, key_id, csrf, expires) VALUES (%s, %s, %s, %s)",
                (session["digest"], session["key_id"], session["csrf"], session["expires"]),
            )
            conn.execute("DELETE FROM web_sessions WHERE expires <= %s", (now,))
            conn.execute(
                "DELETE FROM web_sessions WHERE digest IN"
                " (SELECT digest FROM web_sessions ORDER BY seq DESC OFFSET %s)",
                (max_sessions,),
            )

    def web_session(self, digest: str, *, now: float) -> Row | None:
        """The live sign-in of ``digest`` (an expired one is deleted and not returned)."""
        with self._connection("reading a dashboard sign-in") as conn:
            row = conn.execute(
                "SELECT key_id, csrf, expires FROM web_sessions WHERE digest = %s", (digest,)
            ).fetchone()
            if row is not None and row["expires"] <= now:
                conn.execute("DELETE FROM web_sessions WHERE digest = %s", (digest,))
                return None
            return row

    def drop_web_session(self, digest: str) -> None:
        with self._connection("signing out of the dashboard") as conn:
            conn.execute("DELETE FROM web_sessions WHERE digest = %s", (digest,))
