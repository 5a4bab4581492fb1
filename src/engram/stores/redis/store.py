"""Redis backend (``redis://[:password@]host:6379/0``, ``rediss://`` for TLS): redis-py.

Entries, sessions and tasks live in hashes indexed by sorted sets; the key
layout is drawn in :mod:`engram.stores.redis.layout` (and docs/backends.md).
Every change is one Lua script, so an upsert keeps id and created_at and its
indexes move with it atomically, whatever other processes do. A TTL is a
Redis expiry (``PEXPIREAT``, at expiry + ``expiry_grace``) on the entry's
hash; ``prune()`` deletes expired entries at once and clears the index
entries of those Redis already dropped.

Conversation records (messages, summaries, profiles, checkpoints) are the
mixin :class:`engram.stores.redis.chat.RedisConversation`, on the same
client and key prefix.

Full-text search runs client-side (plain Redis has no text index): each
process keeps an inverted index of a namespace's analyzed entries
(``engram.search.inverted``, BM25 as in ``engram.search.bm25``), checks the
namespace's version counter before every search and re-reads the member list
only when a write moved it, loading just the entries it has not seen. Measured
limits are in docs/backends.md (about 10k entries per namespace). Searching
every namespace indexes every entry.

Vector search is client-side too (:mod:`engram.stores.redis.vectors`): a
vector per entry in ``P:vec:{tail}``, searched on the in-process index of
``engram.search.vector``, kept coherent through a change counter and log.

URL options: ``prefix`` (default ``engram``) — the first part of every key,
so several stores can share one Redis database; ``expiry_grace`` (seconds,
default 3600) — how long Redis keeps an entry after it expired (invisible to
reads, still exported and copied) before dropping it; 0 drops it at once.
Pool: a blocking pool of at most 50 connections, or ``pool_size + max_overflow``
when ``db_connection_settings`` sets them; its ``pool_timeout``, and
``db_connect_timeout`` for connecting.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from engram._time import from_iso, to_iso
from engram.config import DBConnectionSettings, Settings
from engram.errors import BackendError, ConfigError
from engram.models import Entry
from engram.search.bm25 import AnalyzedText, CompiledQuery
from engram.search.inverted import InvertedIndex
from engram.search.query import Node
from engram.stores._driver_errors import translating
from engram.stores._files import redact
from engram.stores._filters import is_live, metadata_matches
from engram.stores.base import Counts, EntryQuery, MetadataFilter, Store
from engram.stores.capabilities import CONVERSATION, FTS, MESSAGE_VECTOR, MULTIPROCESS, PERSISTENT, VECTOR
from engram.stores.redis import layout as lay
from engram.stores.redis.chat import RedisConversation
from engram.stores.redis.errors import HOW_TO_START, REDIS_ERRORS
from engram.stores.redis.message_vectors import RedisMessageVectors
from engram.stores.redis.runs import RedisRuns
from engram.stores.redis.sessions import RedisSessions
from engram.stores.redis.vectors import PUT_VECTORS, RedisVectors
from engram.validation import json_encoder

PREFIX = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
SCAN_BATCH = 200
# Seconds Redis keeps an expired entry before dropping it: until then it is
# invisible to reads but still exported, copied and counted as expired, like
# an unpruned row of the SQL backends.
EXPIRY_GRACE = 3600.0
# Analyzed entries kept per process for client-side search (all namespaces together).
SEARCH_CACHE_ENTRIES = 200_000


def parse_redis_url(url: str) -> tuple[str, str, float]:
    """Split our options off a Redis URL; returns (URL for redis-py, prefix, expiry grace in seconds)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("redis", "rediss"):
        raise ConfigError(f"{url!r} is not a redis:// URL")
    prefix, grace = "engram", str(EXPIRY_GRACE)
    rest = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "prefix":
            prefix = value
        elif name == "expiry_grace":
            grace = value
        else:
            rest.append((name, value))
    if not PREFIX.match(prefix):
        raise ConfigError(f"Redis key prefix {prefix!r} must be 1-64 letters, digits, '_', '-' or '.'")
    try:
        seconds = float(grace)
    except ValueError:
        seconds = -1.0
    if not (0 <= seconds < math.inf):
        raise ConfigError(f"expiry_grace in the Redis URL must be a number of seconds >= 0, got {grace!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), prefix, seconds


_json = json_encoder(allow_nan=True)  # built once: json.dumps builds an encoder per call


def _entry(h: dict[str, str]) -> Entry:
    return Entry.model_construct(
        id=h["id"],
        key=h["key"],
        namespace=h["namespace"],
        content=h["content"],
        metadata=json.loads(h["metadata"]),
        created_at=from_iso(h["created_at"]),
        updated_at=from_iso(h["updated_at"]),
        expires_at=from_iso(h["expires_at"] or None),
        context=h.get("context") or None,  # absent from hashes written before issue 15
    )


class _Scope:
    """The client-side search index of one namespace (or of all of them)."""

    def __init__(self) -> None:
        self.index: InvertedIndex[str] = InvertedIndex()
        self.entries: dict[str, Entry] = {}
        self.version: Any = None  # the namespace version(s) the index reflects
        self.loaded = False



# Redis connections are cheap for the server (unlike PostgreSQL's, whose small pool
# default fits max_connections): keep the old generous bound unless the pool is configured.
REDIS_DEFAULT_MAX_CONNECTIONS = 50


def redis_max_connections(pool: DBConnectionSettings) -> int:
    """Connections one store may hold: ``pool_size + max_overflow`` when set, else 50."""
    if pool.model_fields_set & {"pool_size", "max_overflow"}:
        return pool.pool_size + pool.max_overflow
    return REDIS_DEFAULT_MAX_CONNECTIONS


class RedisStore(RedisConversation, RedisRuns, RedisSessions, RedisMessageVectors, RedisVectors, Store):
    """Redis backend; see the module docstring and :mod:`engram.stores.redis.layout`."""

    capabilities: ClassVar[frozenset[str]] = frozenset({CONVERSATION, FTS, MESSAGE_VECTOR, MULTIPROCESS, PERSISTENT, VECTOR})

    def __init__(self, url: str, *, pool: DBConnectionSettings | None = None, connect_timeout: float = 20.0):
        redis_url, prefix, self.expiry_grace = parse_redis_url(url)
        super().__init__(redact(url))
        parts = urlsplit(redis_url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"
        self.keys = lay.Keys(prefix)
        pool = pool or DBConnectionSettings()
        try:
            self._pool = redis.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=redis_max_connections(pool),
                timeout=pool.pool_timeout,
                socket_connect_timeout=connect_timeout,
                decode_responses=True,
            )
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {self.url!r}: {exc}") from exc
        self._client = redis.Redis(connection_pool=self._pool)
        self._put_entry = self._client.register_script(lay.PUT_ENTRY)  # sha computed locally
        self._delete_entry = self._client.register_script(lay.DELETE_ENTRY)
        self._delete_namespace = self._client.register_script(lay.DELETE_NAMESPACE)
        self._prune_namespace = self._client.register_script(lay.PRUNE_NAMESPACE)
        self._put_session = self._client.register_script(lay.PUT_SESSION)
        self._put_task = self._client.register_script(lay.PUT_TASK)
        self._init_conversation()
        self._init_runs()
        self._put_vectors_script = self._client.register_script(PUT_VECTORS)
        self._scopes: dict[str, _Scope] = {}  # search indexes by scope, least recently used first
        self._scopes_lock = threading.Lock()
        self._closed = False
        with self._translated(f"connecting to Redis at {self._where}"):
            self._client.ping()

    @classmethod
    def from_url(cls, url: str, *, settings: Settings | None = None) -> "RedisStore":
        if settings is None:
            return cls(url)
        return cls(url, pool=settings.db_connection_settings, connect_timeout=settings.db_connect_timeout)

    # -- plumbing ----------------------------------------------------------------------
    def _translated(self, action: str) -> AbstractContextManager[None]:
        """``with self._translated(action):`` translates redis errors by ``REDIS_ERRORS``."""
        if self._closed:
            raise BackendError(f"{action} failed: the store for {self._where} is closed")
        return translating(REDIS_ERRORS, action, where=self._where, how_to_start=HOW_TO_START)

    def _hashes(self, keys: Sequence[str]) -> list[dict[str, str]]:
        """HGETALL of many keys in one round trip ({} where a key is gone)."""
        if not keys:
            return []
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return pipe.execute()

    def _scan(
        self,
        index: str,
        load: Callable[[dict[str, str]], Any],
        keep: Callable[[Any], bool] | None,
        offset: int,
        limit: int,
        key_of: Callable[[str], str],
        *,
        reverse: bool = False,
    ) -> list[Any]:
        """Walk a sorted index in rank order (``reverse``: from the top), load each record,
        keep those passing ``keep``, and page with offset/limit."""
        found: list[Any] = []
        skipped = 0
        position = 0
        batch = offset + limit
        read = self._client.zrevrange if reverse else self._client.zrange
        while len(found) < limit:
            members = read(index, position, position + batch - 1)
            if not members:
                break
            position += len(members)
            for h in self._hashes([key_of(m) for m in members]):
                if not h:
                    continue  # removed (or expired) since the index was read
                record = load(h)
                if keep is not None and not keep(record):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(record)
                if len(found) == limit:
                    break
            batch = SCAN_BATCH
        return found

    # -- entries -------------------------------------------------------------------------
    def _entry_args(self, e: Entry, now: datetime) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of PUT_ENTRY for one entry."""
        updated = to_iso(e.updated_at)
        if e.expires_at is None:
            expiry = ""
        else:
            us = lay.micros(e.expires_at)
            expiry = f"{to_iso(e.expires_at)}|{us}|{math.ceil(us / 1000 + self.expiry_grace * 1000)}"
        args = [
            e.id, e.namespace, e.key, e.content, "" if e.metadata is None else _json(e.metadata),
            "" if e.created_at is e.updated_at else to_iso(e.created_at), updated, expiry,
            "" if now is e.updated_at else to_iso(now), e.context or "",
        ]  # fmt: skip
        return self.keys.entry_keys(e.namespace, e.key), args

    def _put_one(self, e: Entry, now: datetime) -> Any:
        # EVALSHA straight through execute_command: the Script wrapper costs ~10 µs a call.
        keys, args = self._entry_args(e, now)
        try:
            return self._client.execute_command("EVALSHA", self._put_entry.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # a restarted or flushed server: load it and retry
            return self._put_entry(keys=keys, args=args)

    def put_entries(self, entries: Sequence[Entry], *, now: datetime) -> list[Entry]:
        if len(entries) == 1 and not self._closed:
            # store(): errors are translated only when there is one (a with block costs µs a call).
            try:
                return self._stored_entries(entries, [self._put_one(entries[0], now)])
            except redis.RedisError:
                with self._translated("storing an entry"):
                    raise
        with self._translated(f"storing {len(entries)} entries" if len(entries) > 1 else "storing an entry"):
            if len(entries) == 1:
                results = [self._put_one(entries[0], now)]
            else:
                pipe = self._client.pipeline(transaction=True)  # MULTI/EXEC: all or nothing, in order
                for e in entries:
                    keys, args = self._entry_args(e, now)
                    self._put_entry(keys=keys, args=args, client=pipe)
                results = pipe.execute()
        return self._stored_entries(entries, results)

    def _stored_entries(self, entries: Sequence[Entry], results: Sequence[Any]) -> list[Entry]:
        """The entries as stored, from the replies of the entry script."""
        stored = []
        for e, result in zip(entries, results):
            if result == 0:  # stored as given
                stored.append(e)
                continue
            ident, created, metadata = result
            if ident == e.id and e.metadata is not None:
                stored.append(e)
            else:
                update = {"id": ident, "created_at": from_iso(created)}
                if e.metadata is None:  # not given: what the script kept
                    update["metadata"] = json.loads(metadata)
                stored.append(e.model_copy(update=update))
        return stored

    def get_entry(self, namespace: str, key: str, *, now: datetime) -> Entry | None:
        with self._translated("reading an entry"):
            h = self._client.hgetall(self.keys.entry(namespace, key))
        if not h:
            return None
        entry = _entry(h)
        return entry if is_live(entry, now) else None

    def list_entries(self, query: EntryQuery, *, now: datetime) -> list[Entry]:
        index = self.keys.order if query.namespace is None else self.keys.ns_order(query.namespace)
        prefix, metadata = query.key_prefix, query.metadata

        def keep(e: Entry) -> bool:  # expired but unpruned entries still sit in the index
            return (
                is_live(e, now)
                and (not prefix or e.key.startswith(prefix))
                and (not metadata or metadata_matches(e.metadata, metadata))
            )

        with self._translated("listing entries"):
            return self._scan(
                index, _entry, keep, query.offset, query.limit, self.keys.entry_of_member,
                reverse=query.order == "updated_desc",
            )

    def delete_entry(self, namespace: str, key: str, *, now: datetime) -> bool:
        with self._translated("deleting an entry"):
            live = self._delete_entry(
                keys=self.keys.entry_keys(namespace, key),
                args=[namespace, to_iso(now), self.keys.prefix + ":", self.keys.tail(namespace, key)],
            )
        return bool(live)

    def delete_namespace(self, namespace: str, *, now: datetime) -> int:
        with self._translated("deleting a namespace"):
            return int(
                self._delete_namespace(
                    keys=self.keys.namespace_keys(namespace),
                    args=[namespace, lay.micros(now), self.keys.entry_prefix],
                )
            )

    def _namespace_counts(self, now: datetime) -> dict[str, tuple[int, int]]:
        """namespace -> (live, expired) entries."""
        names = sorted(self._client.smembers(self.keys.namespaces))
        pipe = self._client.pipeline(transaction=False)
        cutoff = lay.micros(now)
        for ns in names:
            pipe.zcard(self.keys.ns_order(ns))
            pipe.zcount(self.keys.ns_expiry(ns), "-inf", cutoff)
        values = pipe.execute()
        return {ns: (values[2 * i] - values[2 * i + 1], values[2 * i + 1]) for i, ns in enumerate(names)}

    def namespaces(self, *, now: datetime) -> list[str]:
        with self._translated("listing namespaces"):
            counts = self._namespace_counts(now)
        return [ns for ns, (live, _) in counts.items() if live > 0]

    def namespace_counts(self, *, now: datetime) -> dict[str, int]:
        with self._translated("counting entries per namespace"):
            counts = self._namespace_counts(now)
        return {ns: live for ns, (live, _) in counts.items() if live > 0}

    def _load(self, members: list[str]) -> dict[str, tuple[Entry, AnalyzedText]]:
        """Entries of ``members`` (those still stored) with their analyzed text."""
        loaded: dict[str, tuple[Entry, AnalyzedText]] = {}
        for i in range(0, len(members), 1000):
            chunk = members[i : i + 1000]
            for member, h in zip(chunk, self._hashes([self.keys.entry_of_member(m) for m in chunk])):
                if h:
                    entry = _entry(h)
                    loaded[member] = (entry, AnalyzedText.of(entry.key, entry.content))
        return loaded

    def _search_scope(self, namespace: str | None) -> _Scope:
        """The cached search index of a namespace (None: of all), brought up to date.

        Every change to a namespace moves its version counter; the index is
        re-read only when a version moved, and then only entries whose order
        member is new are loaded (a member names one version of one entry).
        """
        scope = "" if namespace is None else "ns:" + namespace
        if namespace is None:
            names = sorted(self._client.smembers(self.keys.namespaces))
            versions = self._client.mget([self.keys.ns_version(ns) for ns in names]) if names else []
            version: Any = tuple(zip(names, versions))
            index = self.keys.order
        else:
            version = self._client.get(self.keys.ns_version(namespace))
            index = self.keys.ns_order(namespace)
        found = self._scopes.pop(scope, None) or _Scope()
        self._scopes[scope] = found  # most recently used last
        if found.loaded and found.version == version:
            return found
        members = self._client.zrange(index, 0, -1)
        entries = found.entries

        def load(missing: list[str]) -> dict[str, AnalyzedText]:
            loaded = self._load(missing)
            entries.update((m, e) for m, (e, _) in loaded.items())
            return {m: doc for m, (_, doc) in loaded.items()}

        found.index.sync(members, load)
        for gone in [m for m in entries if m not in found.index.docs]:
            del entries[gone]
        found.version, found.loaded = version, True
        while sum(len(s.entries) for s in self._scopes.values()) > SEARCH_CACHE_ENTRIES and len(self._scopes) > 1:
            self._scopes.pop(next(iter(self._scopes)))
        return found

    def search_text(
        self, query: Node, *, namespace: str | None, metadata: MetadataFilter, limit: int, now: datetime
    ) -> list[tuple[Entry, float]]:
        compiled = CompiledQuery(query)
        with self._translated("searching"), self._scopes_lock:
            scope = self._search_scope(namespace)
            entries = scope.entries

            def accept(member: str) -> bool:
                e = entries[member]
                return is_live(e, now) and (not metadata or metadata_matches(e.metadata, metadata))

            ranked = scope.index.rank(compiled, accept)[:limit]
            return [(entries[m], score) for m, score in ranked]

    def prune_expired(self, *, now: datetime) -> int:
        cutoff = lay.micros(now)
        with self._translated("pruning expired entries"):
            expired = [ns for ns, (_, n) in self._namespace_counts(now).items() if n > 0]
            return sum(
                int(self._prune_namespace(keys=self.keys.namespace_keys(ns), args=[ns, cutoff, self.keys.entry_prefix]))
                for ns in expired
            )

    def prune_entries(self, *, now: datetime, namespace: str | None = None, dry_run: bool = False) -> int:
        if namespace is None:
            return self.counts(now=now).expired_entries if dry_run else self.prune_expired(now=now)
        cutoff = lay.micros(now)
        with self._translated("pruning expired entries"):
            if dry_run:
                return int(self._client.zcount(self.keys.ns_expiry(namespace), "-inf", cutoff))
            return int(
                self._prune_namespace(
                    keys=self.keys.namespace_keys(namespace), args=[namespace, cutoff, self.keys.entry_prefix]
                )
            )

    def iter_entries(self, *, batch_size: int = 1000) -> Iterator[Entry]:
        position = 0
        while True:
            with self._translated("exporting entries"):
                members = self._client.zrange(self.keys.order, position, position + batch_size - 1)
                hashes = self._hashes([self.keys.entry_of_member(m) for m in members])
            if not members:
                return
            position += len(members)
            yield from (_entry(h) for h in hashes if h)

    # -- operations ----------------------------------------------------------------------------
    def counts(self, *, now: datetime) -> Counts:
        with self._translated("counting"):
            per_namespace = self._namespace_counts(now)
            pipe = self._client.pipeline(transaction=False)
            pipe.zcard(self.keys.sessions)
            pipe.zcard(self.keys.tasks)
            sessions, tasks = pipe.execute()
            conversation = self._conversation_counts()
        live = sum(n for n, _ in per_namespace.values())
        expired = sum(x for _, x in per_namespace.values())
        namespaces = sum(1 for n, _ in per_namespace.values() if n > 0)
        return Counts(live, namespaces, sessions, tasks, expired, None, **conversation)

    def close(self) -> None:
        self._closed = True
        self._pool.disconnect()
