"""The embedded default backend: one SQLite file in WAL mode.

Concurrency model: every thread gets its own connection (WAL lets readers run
beside the one writer); every write is a ``BEGIN IMMEDIATE`` transaction, so a
writer takes the lock up front and waits for it up to the busy timeout instead
of failing half-way with "database is locked".
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from hashlib import blake2b
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from engram._time import from_iso, to_iso
from engram.config import Settings
from engram.errors import BackendError, ConfigError
from engram.models import Entry, Session, Task
from engram.search.fts5 import index_match
from engram.search.query import Node
from engram.stores._driver_errors import SQLITE, translating
from engram.stores._files import create_private_file, ensure_directory
from engram.stores._sql_rows import SQLITE_ROWS, first
from engram.stores.base import Counts, EntryQuery, MetadataFilter, SessionQuery, Store, TaskQuery
from engram.stores.capabilities import CONVERSATION, FTS, MESSAGE_VECTOR, MULTIPROCESS, PERSISTENT, VACUUM, VECTOR
from engram.stores.contracts.entries import EntryRow
from engram.stores.sqlite import bulk as _bulk
from engram.stores.sqlite import sql as _sql
from engram.stores.sqlite.blobs import SQLiteBlobRows
from engram.stores.sqlite.chat import SQLiteConversation
from engram.stores.sqlite.message_vectors import SQLiteMessageVectors
from engram.stores.sqlite.migrate import apply_migrations
from engram.stores.sqlite.schema import MIGRATIONS
from engram.stores.sqlite.vectors import SQLiteVectors
from engram.validation import json_encoder


@lru_cache(maxsize=4096)
def namespace_token(namespace: str) -> str:
    """A digits-only token naming the namespace inside the FTS index.

    Digits pass through unicode61 and the porter stemmer unchanged, and a
    64-bit hash makes collisions between namespaces negligible.
    """
    return str(int.from_bytes(blake2b(namespace.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"))


_entry, _session, _task = SQLITE_ROWS.entry, SQLITE_ROWS.session, SQLITE_ROWS.task
_AFTER = SQLITE_ROWS.entry_width  # the first column a query selects after an entry's


_to_json = json_encoder(allow_nan=True)  # built once, not per call


def _json(value: Any) -> str:
    if type(value) is dict and not value:
        return "{}"
    return _to_json(value)


def _as_stored(e: Entry, row: Sequence[Any]) -> Entry:
    """``e`` as UPSERT_ENTRY_RETURNING stored it: (id, created_at, metadata)."""
    if row[0] == e.id and e.metadata is not None:
        return e
    update: dict[str, Any] = {"id": row[0], "created_at": from_iso(row[1])}
    if e.metadata is None:
        update["metadata"] = json.loads(row[2])
    return e.model_copy(update=update)


def _entry_params(e: Entry, now: datetime | None = None, now_iso: str | None = None) -> tuple[Any, ...]:
    """The UPSERT_ENTRY parameters; ``now_iso`` is ``now`` already formatted
    (the entries of one store_many share their timestamps)."""
    f = e.__dict__  # plain reads: this runs once per entry of every bulk write
    created, metadata, expires = f["created_at"], f["metadata"], f["expires_at"]
    created_iso = now_iso if created is now and now_iso is not None else to_iso(created)
    return (
        f["id"],
        f["namespace"],
        f["key"],
        f["content"],
        None if metadata is None else _json(metadata),
        created_iso,
        created_iso if f["updated_at"] is created else to_iso(f["updated_at"]),
        None if expires is None else to_iso(expires),
        namespace_token(f["namespace"]),
        f["context"],
    )


def parse_sqlite_url(url: str) -> tuple[Path, dict[str, str]]:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"sqlite URL {url!r} has a host; write sqlite:///relative.db or sqlite:////abs/path.db")
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    if not path or path == ":memory:":
        raise ConfigError(
            f"sqlite URL {url!r} names no file: use sqlite:///path/to/engram.db, or memory:// for a store that lives in memory"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return Path(path), options


class SQLiteStore(SQLiteConversation, SQLiteMessageVectors, SQLiteVectors, SQLiteBlobRows, Store):
    """SQLite backend (``sqlite:///path.db``). Options in the URL query: ``busy_timeout`` (seconds)."""

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {FTS, MULTIPROCESS, PERSISTENT, VACUUM, CONVERSATION, VECTOR, MESSAGE_VECTOR}
    )

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0, url: str | None = None):
        self.path = Path(path)
        super().__init__(url or f"sqlite:///{self.path}")
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        if str(self.path) != ":memory:":
            ensure_directory(self.path.parent)
            create_private_file(self.path)  # owner-only; the -wal and -shm files take its mode
        with translating(SQLITE, f"opening {self.path}"):
            self._migrate()

    @classmethod
    def from_url(cls, url: str, *, settings: Settings | None = None) -> "SQLiteStore":
        path, options = parse_sqlite_url(url)
        unknown = set(options) - {"busy_timeout"}
        if unknown:
            raise ConfigError(f"unknown sqlite URL option(s): {', '.join(sorted(unknown))}; known: busy_timeout")
        try:
            timeout = float(options.get("busy_timeout", 30.0))
        except ValueError as exc:
            raise ConfigError(f"busy_timeout must be a number of seconds, got {options['busy_timeout']!r}") from exc
        return cls(path, busy_timeout=timeout, url=url)

    # -- connections ---------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise BackendError(f"{self.url} is closed")
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open {self.path}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL: a crash loses no committed-and-synced txn
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; a ``_write`` inside another (same thread) joins it,
        so composed writes (an entry and its vector) commit together or not at all."""
        conn = self._conn()
        if getattr(self._local, "writing", False):
            with translating(SQLITE, action):
                yield conn
            return
        with translating(SQLITE, action):
            conn.execute("BEGIN IMMEDIATE")
            self._local.writing = True
            try:
                yield conn
            except BaseException:
                self._local.writing = False
                conn.execute("ROLLBACK")
                raise
            self._local.writing = False
            conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self._write("writing in one transaction"):
                yield
        except BaseException:
            self._local.__dict__.pop("after_commit", None)  # rolled back: nothing to catch up with
            raise
        self._after_commit()  # work held back until the data is committed

    def _read(self, action: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with translating(SQLITE, action):
            return self._conn().execute(sql, params).fetchall()

    def _migrate(self) -> None:
        conn = self._conn()
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        with self._write("migrating the schema") as conn:
            apply_migrations(conn, "engram_schema", MIGRATIONS, str(self.path))

    def schema_version(self) -> int:
        return self._read("reading the schema version", "SELECT version FROM engram_schema")[0][0]

    # -- entries -------------------------------------------------------------
    def put_entries(self, entries: Sequence[Entry], *, now: datetime) -> list[Entry]:
        if len(entries) == 1:
            e = entries[0]
            # One statement is atomic on its own (the index trigger's writes included): outside a
            # transaction it runs in autocommit, without a BEGIN and a COMMIT of its own.
            with translating(SQLITE, "storing an entry"):
                row = self._conn().execute(_sql.UPSERT_ENTRY_RETURNING, _entry_params(e)).fetchall()[0]
            return [_as_stored(e, row)]
        iso = to_iso(now)
        params = [_entry_params(e, now, iso) for e in entries]
        with self._write(f"storing {len(entries)} entries") as conn:
            rows = _bulk.upsert_entries(conn, params)
        # Entries given without metadata keep the old one: ``rows`` holds what they ended up with.
        return [e if row is None else _as_stored(e, row) for e, row in zip(entries, rows)]

    def put_entry_parts(self, parts: Iterable[Sequence[Entry]], *, now: datetime) -> int:
        # One transaction; the next part is taken (checked, by store_many) and made parameters
        # while this one is indexed.
        iso = to_iso(now)
        pending = iter(parts)

        def next_params() -> list[tuple[Any, ...]]:
            return [_entry_params(e, now, iso) for e in next(pending, ())]

        params = next_params()
        count = 0
        with self._write("storing entries") as conn:
            while params:
                count += len(params)
                taken: list[list[tuple[Any, ...]]] = []
                _bulk.upsert_entries(conn, params, meanwhile=lambda: taken.append(next_params()))
                params = taken[0]
        return count

    def put_entry_rows(self, rows: Sequence[EntryRow]) -> None:
        # The rows' text goes in as it is: no datetime is formatted (to_iso is most of _entry_params).
        params = [
            (i, ns, key, content, None if meta is None else _json(meta), created, updated, expires, namespace_token(ns),
             context)
            for i, key, ns, content, context, meta, created, updated, expires in rows
        ]
        with self._write(f"storing {len(rows)} entries") as conn:
            _bulk.upsert_entries(conn, params)

    def get_entry(self, namespace: str, key: str, *, now: datetime) -> Entry | None:
        rows = self._read(
            "reading an entry",
            f"SELECT {_sql.ENTRY_COLUMNS} FROM entries e WHERE e.namespace = ? AND e.key = ? AND {_sql.LIVE}",
            (namespace, key, to_iso(now)),
        )
        return first(rows, _entry)

    def list_entries(self, query: EntryQuery, *, now: datetime) -> list[Entry]:
        sql, params = _sql.list_entries_sql(query, to_iso(now))
        return [_entry(r) for r in self._read("listing entries", sql, params)]

    def delete_entry(self, namespace: str, key: str, *, now: datetime) -> bool:
        with self._write("deleting an entry") as conn:
            rows = conn.execute(
                "DELETE FROM entries WHERE namespace = ? AND key = ? RETURNING expires_at", (namespace, key)
            ).fetchall()
        iso = to_iso(now)
        return any(r[0] is None or r[0] > iso for r in rows)

    def delete_namespace(self, namespace: str, *, now: datetime) -> int:
        with self._write("deleting a namespace") as conn:
            live = conn.execute(
                "SELECT count(*) FROM entries e WHERE e.namespace = ? AND " + _sql.LIVE, (namespace, to_iso(now))
            ).fetchone()[0]
            conn.execute("DELETE FROM entries WHERE namespace = ?", (namespace,))
        return live

    def namespaces(self, *, now: datetime) -> list[str]:
        rows = self._read(
            "listing namespaces",
            f"SELECT DISTINCT e.namespace FROM entries e WHERE {_sql.LIVE} ORDER BY e.namespace",
            (to_iso(now),),
        )
        return [r[0] for r in rows]

    def namespace_counts(self, *, now: datetime) -> dict[str, int]:
        return dict(self._read("counting entries per namespace", _sql.NAMESPACE_COUNTS, (to_iso(now),)))

    def search_text(
        self, query: Node, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        iso = to_iso(now)
        if metadata:
            match = index_match(query, None if namespace is None else namespace_token(namespace))
            sql, params = _sql.search_sql(match, metadata, limit, iso)
            rows = self._read("searching", sql, params)
            return [(_entry(r), -r[_AFTER]) for r in rows]
        match = index_match(query, self._scope_token(namespace))
        # Rank inside the index, then read only the k best entries; expired
        # ones among them (rare), or of another namespace (see _scope_token),
        # make us ask again for more.
        k = limit
        while True:
            sql, params = _sql.search_top_sql(match, k, iso)
            rows = self._read("searching", sql, params)
            live = [r for r in rows if r[_AFTER + 1] and (namespace is None or r[2] == namespace)]
            if len(live) >= limit or len(rows) < k:
                return [(_entry(r), -r[_AFTER]) for r in live[:limit]]
            k *= 4

    def _scope_token(self, namespace: str | None) -> str | None:
        """The namespace token to match inside the index; None when the namespace holds every entry.

        bm25() counts, once per query, every row matching each phrase of the
        MATCH, the namespace token included: ~3 ms per 100k entries of the
        namespace, most of a search of a big one. When every entry is in the
        namespace (the usual single-namespace store), the token adds nothing
        but that cost; callers still check each row's namespace, since
        another process may add a namespace at any moment.
        """
        if namespace is None:
            return None
        low, high = self._read(
            "searching", "SELECT (SELECT min(namespace) FROM entries), (SELECT max(namespace) FROM entries)"
        )[0]
        return None if low == high == namespace else namespace_token(namespace)

    def count_text_matches(self, query: Node, *, namespace: str | None, cap: int) -> int:
        # Walks at most ``cap`` index rows and scores none (bm25 is the costly part).
        if namespace is not None and self._scope_token(namespace) is None:
            namespace = None  # the same entries, without walking the namespace token's rows
        match = index_match(query, None if namespace is None else namespace_token(namespace))
        return self._read(
            "counting matches",
            "SELECT count(*) FROM (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? LIMIT ?)",
            (match, cap),
        )[0][0]

    def prune_expired(self, *, now: datetime) -> int:
        with self._write("pruning expired entries") as conn:
            return conn.execute(
                "DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?", (to_iso(now),)
            ).rowcount

    def iter_entries(self, *, batch_size: int = 1000) -> Iterator[Entry]:
        last = 0
        while True:
            rows = self._read(
                "exporting entries",
                f"SELECT {_sql.ENTRY_COLUMNS}, e.rowid FROM entries e WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
                (last, batch_size),
            )
            if not rows:
                return
            yield from (_entry(r) for r in rows)
            last = rows[-1][_AFTER]

    # -- sessions and tasks --------------------------------------------------
    def put_session(self, session: Session) -> None:
        params = (
            session.id, session.status, _json(session.metadata), to_iso(session.started_at),
            to_iso(session.ended_at), session.user_id, session.agent_id,
        )  # fmt: skip
        with self._write("storing a session") as conn:
            conn.execute(_sql.UPSERT_SESSION, params)

    def get_session(self, session_id: str) -> Session | None:
        return first(self._read("reading a session", _sql.GET_SESSION, (session_id,)), _session)

    def list_sessions(self, query: SessionQuery) -> list[Session]:
        sql, params = _sql.list_sessions_sql(query)
        return [_session(r) for r in self._read("listing sessions", sql, params)]

    def put_task(self, task: Task) -> None:
        params = (
            task.id,
            task.agent_type,
            None if task.input is None else _json(task.input),
            None if task.output is None else _json(task.output),
            task.status,
            task.session_id,
            to_iso(task.created_at),
            to_iso(task.updated_at),
            to_iso(task.completed_at),
        )
        with self._write("storing a task") as conn:
            conn.execute(_sql.UPSERT_TASK, params)

    def get_task(self, task_id: str) -> Task | None:
        return first(self._read("reading a task", _sql.GET_TASK, (task_id,)), _task)

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        sql, params = _sql.list_tasks_sql(query)
        return [_task(r) for r in self._read("listing tasks", sql, params)]

    # -- operations ----------------------------------------------------------
    def counts(self, *, now: datetime) -> Counts:
        iso = to_iso(now)
        entries, expired, namespaces = self._read(
            "counting",
            "SELECT count(*) FILTER (WHERE expires_at IS NULL OR expires_at > ?),"
            " count(*) FILTER (WHERE expires_at <= ?),"
            " count(DISTINCT namespace) FILTER (WHERE expires_at IS NULL OR expires_at > ?) FROM entries",
            (iso, iso, iso),
        )[0]
        sessions = self._read("counting", "SELECT count(*) FROM sessions")[0][0]
        tasks = self._read("counting", "SELECT count(*) FROM tasks")[0][0]
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return Counts(entries, namespaces, sessions, tasks, expired, size, **self._conversation_counts())

    def vacuum(self) -> None:
        with self._write("optimizing the full-text index") as conn:
            conn.execute("INSERT INTO entries_fts (entries_fts) VALUES ('optimize')")
            conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        with translating(SQLITE, "vacuuming"):
            conn = self._conn()
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        if not self._closed:
            try:
                self.save_vector_indexes()  # HNSW graphs that took many changes: the next process loads them
            except Exception:  # noqa: BLE001 - a graph not saved is rebuilt later; closing must not fail
                pass
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
