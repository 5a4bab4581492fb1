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

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

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
    database: str | None = None
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


class CacheSettings(_Layer):
    """Temporary values: ``in-memory`` (an LRU per process) or ``redis`` (shared, TTL native)."""

    type: Literal["in-memory", "redis"] = "in-memory"
    max_entries: int = Field(10_000, ge=1, validation_alias=_alias("max_entries", "maxEntries", "maxSize", "max_size"))
    default_ttl: float | None = Field(
        None, gt=0, validation_alias=_alias("default_ttl", "defaultTtl", "ttl"), description="Seconds; none: no expiry."
    )


class DatabaseSettings(_Layer):
    """The records: what ``database_url`` names, spelled as a layer."""

    type: Literal["in-memory", "sqlite", "postgres", "redis"] = "sqlite"
    path: str | None = Field(None, validation_alias=_alias("path", "store_path", "storePath"))


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
        default_factory=BlobStoreSettings, validation_alias=_alias("blob_store", "blobStore", "blobs")
    )
