"""PostgreSQL backend (``postgresql://user@host:5432/db``, also ``postgres://``): psycopg 3 + psycopg_pool.

Many engram processes may share one database. Every write is one statement
(an ``INSERT ... ON CONFLICT`` upsert) or one transaction, so concurrent
writers never lose or duplicate an entry; migrations run under an advisory
lock, so processes starting together migrate once.

Full text: each entry has a ``tsvector`` built by ``engram.search.tsquery``
(our tokenizer and Porter stemmer, so queries behave as on SQLite) holding
one extra lexeme for its namespace, under a GIN index. A namespaced search is
``tsv @@ '#<namespace hash>' & (query)``: the namespace restriction is part of
the index condition, not a filter after it. Scores are ``ts_rank_cd`` (higher
is better).

Vectors (:mod:`engram.stores.postgres.vectors`): a ``bytea`` per entry and a
change log; where the database has the ``vector`` extension (or engram may
create it) also a ``vector(d)`` column under an HNSW index, searched in SQL
(:mod:`engram.stores.postgres.pgvector`), else the in-process index of
``engram.search.vector`` in each process. ``stats`` says which.

Connections: at most ``pool_size + max_overflow`` (default 1 + 3) per store,
one pool for everything (vectors included), so many processes fit a stock
``max_connections``. A thread's nested calls share its connection, which is
how an entry and its vector commit in one transaction.

URL options (query string), besides libpq's own (``sslmode``, ...):
``schema`` — keep engram's tables in this schema (created if missing);
``pool_size``, ``max_overflow``, ``pool_timeout``, ``pool_pre_ping``,
``pool_recycle``, ``pool_max_idle``, ``echo`` — override ``db_connection_settings`` for this URL;
``pgvector=off`` — search vectors in-process even where pgvector is installed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import sql as pgsql

from engram.config import DBConnectionSettings, Settings
from engram.errors import BackendError, ConfigError
from engram.models import Entry, Session, Task
from engram.search.query import Node, positive_terms
from engram.search.tsquery import compile_tsquery, scoped_tsquery
from engram.stores._files import redact
from engram.stores._sql_rows import POSTGRES_ROWS, first, paged, utc
from engram.stores.base import (
    Counts,
    EntryQuery,
    MetadataFilter,
    SessionQuery,
    Store,
    TaskQuery,
    VectorItem,
    VectorModel,
)
from engram.stores.capabilities import CONVERSATION, FTS, MESSAGE_VECTOR, MULTIPROCESS, PERSISTENT, VACUUM, VECTOR
from engram.stores.postgres import bulk as _bulk
from engram.stores.postgres import sql as q
from engram.stores.postgres.blobs import PostgresBlobRows
from engram.stores.postgres.chat import PostgresConversation
from engram.stores.postgres.columns import entry_params, json_text
from engram.stores.postgres.errors import PostgresErrors, connect_problem
from engram.stores.postgres.message_vectors import PostgresMessageVectors
from engram.stores.postgres.pgvector import PgVectorSearch
from engram.stores.postgres.pgvector_bulk import loading
from engram.stores.postgres.pgvector_schema import open_layer, pgvector_option
from engram.stores.postgres.vectors import PostgresVectors

log = logging.getLogger("engram.stores.postgres.store")  # the name docs/backends.md gives

# pool_pre_ping checks a connection on checkout only when it sat idle longer
# than this: one used a moment ago is known to be alive, and a check on every
# checkout would double the round trips of every call.
PING_AFTER_IDLE_S = 1.0

POOL_KEYS = frozenset(DBConnectionSettings.model_fields)


# -- URL and settings --------------------------------------------------------------


def parse_postgres_url(url: str, defaults: DBConnectionSettings) -> tuple[str, str | None, DBConnectionSettings]:
    """Split our options off a PostgreSQL URL.

    Returns the URL libpq gets (its own options kept), the schema (or None) and
    the pool settings (``defaults`` overridden by URL options).

    Raises:
        ConfigError: a bad schema name or pool option.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigError(f"{url!r} is not a postgresql:// URL")
    ours: dict[str, str] = {}
    libpq: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "schema" or name in POOL_KEYS:
            ours[name] = value
        else:
            libpq.append((name, value))
    schema = ours.pop("schema", None)
    if schema is not None and not q.SCHEMA_NAME.match(schema):
        raise ConfigError(
            f"schema {schema!r} in the PostgreSQL URL must be lower-case letters, digits and '_' (at most 63)"
        )
    settings = defaults
    if ours:
        try:
            settings = DBConnectionSettings.model_validate({**defaults.model_dump(), **ours})
        except ValueError as exc:
            raise ConfigError(f"invalid pool option in the PostgreSQL URL: {exc}") from exc
    if settings.pool_size + settings.max_overflow < 1:
        raise ConfigError("pool_size + max_overflow must be at least 1: the pool needs one connection to work with")
    conn_url = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(libpq), parts.fragment))
    return conn_url, schema, settings


class PooledConnection(psycopg.Connection):  # type: ignore[type-arg]
    """A pool connection that remembers when it was last handed back."""

    returned_at = 0.0


def _mark_returned(conn: PooledConnection) -> None:
    conn.returned_at = time.monotonic()


def check_if_idle(conn: PooledConnection) -> None:
    """The pre-ping: ``ConnectionPool.check_connection`` when idle longer than PING_AFTER_IDLE_S."""
    if time.monotonic() - conn.returned_at > PING_AFTER_IDLE_S:
        psycopg_pool.ConnectionPool.check_connection(conn)


def pool_arguments(settings: DBConnectionSettings) -> dict[str, Any]:
    """``db_connection_settings`` mapped onto ``psycopg_pool.ConnectionPool`` arguments.

    pool_size -> min_size (connections kept open), pool_size + max_overflow ->
    max_size, pool_timeout -> timeout (wait for a free connection),
    pool_pre_ping -> check (see :func:`check_if_idle`), pool_recycle ->
    max_lifetime, pool_max_idle -> max_idle. ``echo`` is handled by the store (SQL logged at DEBUG).
    """
    return {
        "connection_class": PooledConnection,
        "min_size": settings.pool_size,
        "max_size": settings.pool_size + settings.max_overflow,
        "timeout": settings.pool_timeout,
        "check": check_if_idle if settings.pool_pre_ping else None,
        "reset": _mark_returned,
        "max_lifetime": settings.pool_recycle,
        "max_idle": settings.pool_max_idle,
    }


def connection_options(schema: str | None) -> str:
    """libpq ``options``: UTC timestamps, and the schema first on the search path."""
    options = "-c TimeZone=UTC"
    if schema is not None:
        options += f" -c search_path={schema},public"  # schema matched SCHEMA_NAME: no spaces, no quotes
    return options


# -- rows <-> records ----------------------------------------------------------------

_entry, _session, _task = POSTGRES_ROWS.entry, POSTGRES_ROWS.session, POSTGRES_ROWS.task
_AFTER = POSTGRES_ROWS.entry_width  # the first column a query selects after an entry's


def _stored(e: Entry, row: Sequence[Any]) -> Entry:
    """``e`` as the upsert stored it, from its ``(id, created_at, metadata)``."""
    ident, created, metadata = row
    if ident == e.id and e.metadata is not None:
        return e
    update = {"id": ident, "created_at": utc(created)}
    if e.metadata is None:  # not given: what the upsert kept
        update["metadata"] = metadata
    return e.model_copy(update=update)


def _session_params(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": s.status,
        "metadata": json_text(s.metadata),
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "user_id": s.user_id,
        "agent_id": s.agent_id,
    }


def _task_params(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "agent_type": t.agent_type,
        "input": None if t.input is None else json_text(t.input),
        "output": None if t.output is None else json_text(t.output),
        "status": t.status,
        "session_id": t.session_id,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "completed_at": t.completed_at,
    }


def rank_tsquery(node: Node) -> str:
    """The tsquery that scores: every positive term, OR-ed (BM25 sums over them too)."""
    terms = positive_terms(node)
    if len(terms) == 1:
        return compile_tsquery(terms[0])
    return " | ".join(compile_tsquery(t) for t in terms)


# -- the store -------------------------------------------------------------------------


class PostgresStore(
    PostgresConversation, PgVectorSearch, PostgresMessageVectors, PostgresVectors, PostgresBlobRows, Store
):
    """PostgreSQL backend; see the module docstring for URL options."""

    capabilities: ClassVar[frozenset[str]] = frozenset({FTS, MULTIPROCESS, PERSISTENT, VACUUM, CONVERSATION, VECTOR, MESSAGE_VECTOR})

    def __init__(
        self,
        url: str,
        *,
        pool: DBConnectionSettings | None = None,
        connect_timeout: float = 20.0,
    ):
        url, use_pgvector = pgvector_option(url)
        conn_url, self.schema, self.pool_settings = parse_postgres_url(url, pool or DBConnectionSettings())
        super().__init__(redact(url))
        parts = urlsplit(conn_url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"
        self._database = parts.path.lstrip("/") or (parts.username or "postgres")
        self._translated = PostgresErrors(self._where, self.pool_settings, self._diagnose)
        self._echo = self.pool_settings.echo
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "options": connection_options(self.schema),
        }
        if "connect_timeout" not in conn_url:
            kwargs["connect_timeout"] = max(1, round(connect_timeout))
        self._conninfo = psycopg.conninfo.make_conninfo(conn_url)
        self._kwargs = kwargs
        # Connect once directly: an unreachable server fails now, with its own
        # message, rather than after pool_timeout of silent retries.
        with self._translated(f"connecting to {self._where}"):
            try:
                first = psycopg.connect(self._conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                raise BackendError(self._explain(exc)) from exc
            try:
                self._migrate(first)
                lock = lambda: self._lock_migrations(first)
                self.vector_oids = open_layer(first, self._run, self.schema, lock, use=use_pgvector)
            finally:
                first.close()
        # Opened after the migration connection is closed, so start-up never holds two; it
        # fills to pool_size (default 1) in the background and grows on demand up to
        # pool_size + max_overflow (default 4), so many processes fit max_connections.
        self._pool = psycopg_pool.ConnectionPool(
            self._conninfo,
            kwargs=kwargs,
            open=True,
            name=f"engram:{self._where}",
            **pool_arguments(self.pool_settings),
        )
        self._held = threading.local()  # the connection this thread is using (nested calls share it)

    @classmethod
    def from_url(cls, url: str, *, settings: Settings | None = None) -> "PostgresStore":
        if settings is None:
            return cls(url)
        return cls(url, pool=settings.db_connection_settings, connect_timeout=settings.db_connect_timeout)

    # -- plumbing --------------------------------------------------------------------
    def _explain(self, exc: psycopg.Error) -> str:
        return connect_problem(
            exc, self._where, self._database, self.pool_settings.pool_size + self.pool_settings.max_overflow
        )

    def _diagnose(self) -> str | None:
        """Why a new connection fails right now (for a pool timeout), or None when it does not."""
        try:
            psycopg.connect(self._conninfo, **self._kwargs).close()
        except psycopg.Error as exc:
            return self._explain(exc)
        return None

    @contextmanager
    def _conn(self, action: str) -> Iterator[psycopg.Connection]:
        """A pooled connection; a call made while this thread already holds one (inside
        :meth:`put_entries_with_vectors`'s transaction) shares it, so it joins that
        transaction and never takes a second connection."""
        held = getattr(self._held, "conn", None)
        if held is not None:
            with self._translated(action):
                yield held
            return
        with self._translated(action), self._pool.connection() as conn:
            self._held.conn = conn
            try:
                yield conn
            finally:
                self._held.conn = None

    def _run(self, conn: psycopg.Connection, sql: str | pgsql.Composable, params: Any = None) -> psycopg.Cursor:
        if self._echo:
            text = sql if isinstance(sql, str) else sql.as_string(conn)
            log.debug("SQL %s -- %r", " ".join(text.split()), params)
        return conn.execute(sql, params)

    def _fetch(self, action: str, sql: str, params: Any = None) -> list[Any]:
        with self._conn(action) as conn:
            return self._run(conn, sql, params).fetchall()

    def _migrate(self, conn: psycopg.Connection) -> None:
        """Bring the schema up to date: ordered migrations, a version table, an advisory lock."""
        if self._schema_current(conn):
            return
        with conn.transaction():
            self._lock_migrations(conn)
            if self.schema is not None:
                self._run(conn, pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(self.schema)))
            self._run(conn, q.CREATE_VERSION_TABLE)
            row = self._run(conn, q.READ_VERSION_FOR_UPDATE).fetchone()
            version = row[0] if row else 0
            self._check_version(version)
            for script in q.MIGRATIONS[version:]:
                self._run(conn, script)
            if row is None:
                self._run(conn, q.INSERT_VERSION, (len(q.MIGRATIONS),))
            elif version != len(q.MIGRATIONS):
                self._run(conn, q.UPDATE_VERSION, (len(q.MIGRATIONS),))

    def _lock_migrations(self, conn: psycopg.Connection) -> None:
        """Take the migration lock of this schema until the transaction ends."""
        self._run(conn, q.LOCK_MIGRATIONS, (q.MIGRATION_LOCK, self.schema or ""))

    def _schema_current(self, conn: psycopg.Connection) -> bool:
        if not self._run(conn, q.VERSION_TABLE_EXISTS).fetchone()[0]:
            return False
        row = self._run(conn, q.READ_VERSION).fetchone()
        version = row[0] if row else 0
        self._check_version(version)
        return version == len(q.MIGRATIONS)

    def _check_version(self, version: int) -> None:
        if version > len(q.MIGRATIONS):
            raise ConfigError(
                f"the engram schema at {self._where} is version {version}, newer than this engram "
                f"({len(q.MIGRATIONS)}): upgrade engram"
            )

    def schema_version(self) -> int:
        return self._fetch("reading the schema version", q.READ_VERSION)[0][0]

    # -- entries -----------------------------------------------------------------------
    def put_entries(self, entries: Sequence[Entry], *, now: datetime) -> list[Entry]:
        if _bulk.can_stage(entries):
            with self._conn(f"storing {len(entries)} entries") as conn, conn.transaction():
                rows = _bulk.upsert_entries(conn, entries, now)
            return [e if row is None else _stored(e, row) for e, row in zip(entries, rows)]
        params = [entry_params(e, now) for e in entries]
        if len(entries) == 1:
            with self._conn("storing an entry") as conn:
                rows = [self._run(conn, q.UPSERT_ENTRY, params[0]).fetchone()]
        else:
            # Rows are locked in (namespace, key) order, the same in every process, so
            # concurrent batches with overlapping keys never deadlock. The sort is
            # stable: a key repeated in the batch is still upserted in input order.
            order = sorted(range(len(entries)), key=lambda i: (entries[i].namespace, entries[i].key))
            rows = [None] * len(entries)
            with self._conn(f"storing {len(entries)} entries") as conn, conn.transaction(), conn.cursor() as cur:
                if self._echo:
                    log.debug("SQL %s -- x%d", " ".join(q.UPSERT_ENTRY.split()), len(params))
                # Pipelined; one statement per entry, so a key repeated in the batch upserts twice.
                cur.executemany(q.UPSERT_ENTRY, [params[i] for i in order], returning=True)
                for i, _ in zip(order, cur.results()):
                    rows[i] = cur.fetchone()
        return [_stored(e, row) for e, row in zip(entries, rows)]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Every call made inside by this thread shares conn (see _conn), so joins this; a load of
        # vectors in it builds the HNSW index once, at its end (see pgvector_bulk).
        with self._conn("writing in one transaction") as conn, conn.transaction(), loading(self, conn):
            yield

    def _put_entries_and_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], now: datetime, model: VectorModel
    ) -> list[Entry]:
        # put_entries and put_vectors run on this connection (see _conn), inside this transaction.
        with self._conn("storing entries with their vectors") as conn, conn.transaction():
            stored = self.put_entries(entries, now=now)
            self.put_vectors(vectors, model=model)
        return stored

    def get_entry(self, namespace: str, key: str, *, now: datetime) -> Entry | None:
        rows = self._fetch("reading an entry", q.GET_ENTRY, {"namespace": namespace, "key": key, "now": now})
        return first(rows, _entry)

    def list_entries(self, query: EntryQuery, *, now: datetime) -> list[Entry]:
        sql, params = q.list_entries_sql(query, now)
        return [_entry(r) for r in self._fetch("listing entries", sql, params)]

    def delete_entry(self, namespace: str, key: str, *, now: datetime) -> bool:
        rows = self._fetch("deleting an entry", q.DELETE_ENTRY, {"namespace": namespace, "key": key, "now": now})
        return any(r[0] for r in rows)

    def delete_namespace(self, namespace: str, *, now: datetime) -> int:
        return self._fetch("deleting a namespace", q.DELETE_NAMESPACE, {"namespace": namespace, "now": now})[0][0]

    def namespaces(self, *, now: datetime) -> list[str]:
        return [r[0] for r in self._fetch("listing namespaces", q.NAMESPACES, {"now": now})]

    def namespace_counts(self, *, now: datetime) -> dict[str, int]:
        return dict(self._fetch("counting entries per namespace", q.NAMESPACE_COUNTS, {"now": now}))

    def search_text(
        self, query: Node, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        sql, params = q.search_sql(scoped_tsquery(query, namespace), rank_tsquery(query), metadata, limit, now)
        return [(_entry(r), float(r[_AFTER])) for r in self._fetch("searching", sql, params)]

    def count_text_matches(self, query: Node, *, namespace: str | None, cap: int) -> int:
        # Reads at most ``cap`` matching rows and ranks none: ts_rank_cd over every entry holding a
        # question's common words is what made hybrid search slow (see hybrid.prune_keywords).
        params = {"match": scoped_tsquery(query, namespace), "cap": cap}
        with self._conn("counting matches") as conn:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                return self._run(conn, q.COUNT_MATCHES, params).fetchone()[0]  # inside a caller's transaction
            # Expecting the LIMIT to end a sequential scan early, the planner tests @@ on row after row
            # (~70 ms at 100k entries); the GIN bitmap counts the same in ~10. Pipelined: one round trip.
            with conn.pipeline(), conn.transaction():
                self._run(conn, q.NO_SEQUENTIAL_SCAN)
                cur = self._run(conn, q.COUNT_MATCHES, params)
            return cur.fetchone()[0]

    def prune_expired(self, *, now: datetime) -> int:
        with self._conn("pruning expired entries") as conn:
            return self._run(conn, q.PRUNE_EXPIRED, {"now": now}).rowcount

    def iter_entries(self, *, batch_size: int = 1000) -> Iterator[Entry]:
        fetch = partial(self._fetch, "exporting entries", q.ITER_ENTRIES)
        return paged(lambda after: fetch({"after": after, "limit": batch_size}), _entry, _AFTER, 0)

    # -- sessions and tasks ----------------------------------------------------------------
    def put_session(self, session: Session) -> None:
        with self._conn("storing a session") as conn:
            self._run(conn, q.UPSERT_SESSION, _session_params(session))

    def get_session(self, session_id: str) -> Session | None:
        return first(self._fetch("reading a session", q.GET_SESSION, {"id": session_id}), _session)

    def list_sessions(self, query: SessionQuery) -> list[Session]:
        sql, params = q.list_sessions_sql(query)
        return [_session(r) for r in self._fetch("listing sessions", sql, params)]

    def iter_sessions(self, *, batch_size: int = 1000) -> Iterator[Session]:
        fetch = partial(self._fetch, "exporting sessions", q.ITER_SESSIONS)
        return paged(lambda after: fetch({"after": after, "limit": batch_size}), _session, 0, "")

    def put_task(self, task: Task) -> None:
        with self._conn("storing a task") as conn:
            self._run(conn, q.UPSERT_TASK, _task_params(task))

    def get_task(self, task_id: str) -> Task | None:
        return first(self._fetch("reading a task", q.GET_TASK, {"id": task_id}), _task)

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        sql, params = q.list_tasks_sql(query)
        return [_task(r) for r in self._fetch("listing tasks", sql, params)]

    def iter_tasks(self, *, batch_size: int = 1000) -> Iterator[Task]:
        fetch = partial(self._fetch, "exporting tasks", q.ITER_TASKS)
        return paged(lambda after: fetch({"after": after, "limit": batch_size}), _task, 0, "")

    # -- operations ------------------------------------------------------------------------
    def counts(self, *, now: datetime) -> Counts:
        entries, namespaces, sessions, tasks, expired, size = self._fetch("counting", q.COUNTS, {"now": now})[0]
        return Counts(entries, namespaces, sessions, tasks, expired, size, **self._conversation_counts())

    def vacuum(self) -> None:
        with self._conn("vacuuming") as conn:  # autocommit: VACUUM cannot run in a transaction
            for statement in q.VACUUM:
                self._run(conn, statement)

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None and not pool.closed:
            pool.close()
