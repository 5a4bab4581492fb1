"""The ``storage:`` section of the config: three layers, each with its own backend.

```yaml
storage:
  cache:      {type: redis, url: $REDIS_URL, max_connections: 100}
  database:   {type: postgres, url: $POSTGRES_CONNECTION_STRING, max_connections: 25}
  blob_store: {type: local, store_path: /var/data/engram/blobs, max_blob_size: 104857600}
```

The cache holds temporary values (embeddings, repeated searches), the database the
records, the blob store files and other large objects. Dexto's camelCase spellings
(``blobStore``, ``maxConnections``, ``storePath``, ...) are accepted as aliases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from engram.errors import ConfigError

MB = 1024 * 1024
# Limits per blob-store type when the config names none (the Dexto defaults).
BLOB_LIMITS: dict[str, tuple[int, int]] = {
    "in-memory": (5 * MB, 50 * MB),
    "local": (100 * MB, 10 * 1024 * MB),
    "database": (100 * MB, 10 * 1024 * MB),
}


def _alias(*names: str) -> Any:
    return AliasChoices(*names)


class _Layer(BaseModel):
    """Connection fields every layer may use: a URL, or its parts."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    url: str | None = Field(None, validation_alias=_alias("url", "connectionString", "connection_string"))
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    database: str | int | None = None  # a database name; for Redis its number
    user: str | None = Field(None, validation_alias=_alias("user", "username"))
    password: str | None = None
    max_connections: int | None = Field(None, ge=1, le=10_000, validation_alias=_alias("max_connections", "maxConnections"))
    idle_timeout_ms: int | None = Field(
        None, ge=0, validation_alias=_alias("idle_timeout_ms", "idleTimeoutMs", "idleTimeoutMillis")
    )
    connection_timeout_ms: int | None = Field(
        None, ge=1, validation_alias=_alias("connection_timeout_ms", "connectionTimeoutMs", "connectionTimeoutMillis")
    )
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _memory_spelling(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type") in ("memory", "inmemory", "in_memory"):
            return {**value, "type": "in-memory"}
        return value

    def server_url(self, scheme: str, default_port: int, where: str) -> str:
        """``url``, or one built from host/port/database/user/password (quoted)."""
        if self.url:
            return self.url
        if not self.host:
            raise ConfigError(f"{where} needs url (or connectionString), or host (with port, database, user, password)")
        auth = ""
        if self.user or self.password:
            auth = quote(self.user or "", safe="") + (f":{quote(self.password, safe='')}" if self.password else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = "" if self.database is None else "/" + quote(str(self.database), safe="")
        return f"{scheme}://{auth}{host}:{self.port or default_port}{path}"


# Redis cache options (``options:``), under either spelling: our name -> what it sets.
CACHE_OPTIONS = {
    "key_prefix": "key_prefix", "keyPrefix": "key_prefix",
    "command_timeout_ms": "command_timeout_ms", "commandTimeout": "command_timeout_ms",
    "max_retries": "max_retries", "maxRetriesPerRequest": "max_retries",
}


class CacheSettings(_Layer):
    """Temporary values: ``in-memory`` (an LRU per process) or ``redis`` (shared, TTL native).

    ``search_results`` answers repeated identical searches from the cache
    (off by default: measured in ``bench/cache.py``); any write to the store
    through engram invalidates them. With several processes writing one
    database, use a ``redis`` cache so that they all see each other's writes.
    """

    type: Literal["in-memory", "redis"] = "in-memory"
    max_entries: int = Field(10_000, ge=1, validation_alias=_alias("max_entries", "maxEntries", "maxSize", "max_size"))
    default_ttl: float | None = Field(
        None, gt=0, validation_alias=_alias("default_ttl", "defaultTtl", "ttl"), description="Seconds; none: no expiry."
    )
    search_results: bool = Field(False, validation_alias=_alias("search_results", "searchResults"))
    search_ttl: float = Field(300.0, gt=0, validation_alias=_alias("search_ttl", "searchTtl"))

    @field_validator("options")
    @classmethod
    def _known_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(k for k in value if k not in CACHE_OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))}; known: {', '.join(CACHE_OPTIONS)}")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> "CacheSettings":
        if self.type == "in-memory" and (self.url or self.host or self.options):
            raise ValueError("an in-memory cache takes no url, host or options; use type: redis for a shared cache")
        return self

    def option(self, name: str, default: Any = None) -> Any:
        """The value of a Redis option under either of its spellings."""
        for key, value in self.options.items():
            if CACHE_OPTIONS[key] == name:
                return value
        return default

    def redis_url(self) -> str:
        url = self.server_url("redis", 6379, "storage.cache (type redis)")
        if url.split("://", 1)[0].lower() not in ("redis", "rediss", "unix"):
            raise ConfigError(f"storage.cache.url must be a redis://, rediss:// or unix:// URL for type redis, got {url.split('://', 1)[0]}://")
        return url


class DatabaseSettings(_Layer):
    """The records: what ``database_url`` names, spelled as a layer."""

    type: Literal["in-memory", "sqlite", "postgres", "redis"] = "sqlite"
    path: str | None = Field(None, validation_alias=_alias("path", "store_path", "storePath"))

    def to_url(self, data_dir: Path) -> str:
        """The database URL this layer names; a relative SQLite path is relative to the working directory.

        SQLite: ``path`` (a file; or a directory when ``database`` names the
        file, as Dexto's older configs do), or ``database`` alone (a file in
        ``data_dir``). ``options`` become URL options: for PostgreSQL libpq's
        parameters (``ssl: true`` is ``sslmode=require``, ``statement_timeout``
        goes in ``options=-c ...``), for SQLite ``busy_timeout``.

        Raises:
            ConfigError: a URL of another scheme than the type, or no way to connect.
        """
        if self.type == "in-memory":
            return "memory://"
        if self.type == "sqlite":
            if self.url:
                url = self.url
            else:
                name = None if self.database is None else str(self.database)
                if self.path and name:
                    file = Path(self.path).expanduser() / name
                elif self.path:
                    file = Path(self.path).expanduser()
                else:
                    file = data_dir / (name or "engram.db")
                url = f"sqlite:///{file.absolute()}"
            return self._with_options(url, "sqlite", ("sqlite",))
        if self.type == "postgres":
            url = self.server_url("postgresql", 5432, "storage.database (type postgres)")
            return self._with_options(url, "postgres", ("postgresql", "postgres"))
        url = self.server_url("redis", 6379, "storage.database (type redis)")
        return self._with_options(url, "redis", ("redis", "rediss"))

    def _with_options(self, url: str, kind: str, schemes: tuple[str, ...]) -> str:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in schemes:
            raise ConfigError(
                f"storage.database.url must be a {' or '.join(s + '://' for s in schemes)} URL for type {self.type}, "
                f"got {scheme + '://' if scheme else repr(url)}"
            )
        params: list[tuple[str, str]] = []
        for name, value in self.options.items():
            if kind == "postgres" and name == "ssl":
                params.append(("sslmode", "require" if value else "disable"))
            elif kind == "postgres" and name == "statement_timeout":
                params.append(("options", f"-c statement_timeout={int(value)}"))
            elif kind == "sqlite" and name != "busy_timeout":
                raise ConfigError(f"storage.database.options.{name}: unknown for sqlite; known: busy_timeout")
            else:
                params.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
        if not params:
            return url
        return url + ("&" if "?" in url else "?") + urlencode(params)


class BlobStoreSettings(_Layer):
    """Files and large objects: ``in-memory``, ``local`` (a directory) or ``database`` (chunked rows)."""

    type: Literal["in-memory", "local", "database"] = "local"
    store_path: str | None = Field(None, validation_alias=_alias("store_path", "storePath", "path"))
    max_blob_size: int | None = Field(None, ge=1, validation_alias=_alias("max_blob_size", "maxBlobSize"))
    max_total_size: int | None = Field(None, ge=1, validation_alias=_alias("max_total_size", "maxTotalSize"))
    cleanup_after_days: float = Field(60, gt=0, validation_alias=_alias("cleanup_after_days", "cleanupAfterDays"))

    @property
    def blob_limit(self) -> int:
        return self.max_blob_size or BLOB_LIMITS[self.type][0]

    @property
    def total_limit(self) -> int:
        return self.max_total_size or BLOB_LIMITS[self.type][1]


class StorageSettings(BaseModel):
    """The three layers; a layer left out keeps engram's default for it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    cache: CacheSettings = Field(default_factory=CacheSettings)
    database: DatabaseSettings | None = None
    blob_store: BlobStoreSettings = Field(
        default_factory=BlobStoreSettings, validation_alias=_alias("blob_store", "blobStore", "blobs", "blob")
    )
