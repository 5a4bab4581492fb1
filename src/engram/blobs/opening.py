"""The blob store that the ``storage.blob_store`` settings choose for a Memory.

``type`` (``in-memory`` | ``local`` | ``database``) names the backend. When
the config names no type, a ``memory://`` database gets an in-memory blob
store, a PostgreSQL database keeps blobs in its own tables (so every server
sharing it sees them), and every other database gets a ``local`` one: ``<name>-blobs`` beside a
SQLite file or a JSON store directory, else ``blobs/<scheme>-<hash of the URL>``
in engram's data directory. ``store_path`` puts a local store elsewhere. Limits default per
type (``engram.storage_settings.BLOB_LIMITS``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from engram.blobs.base import BlobBackend
from engram.blobs.references import referenced_blob_ids
from engram.blobs.store import BlobStore
from engram.config import Settings, default_data_dir
from engram.storage_settings import BLOB_LIMITS
from engram.stores._files import redact
from engram.stores.base import Store
from engram.stores.registry import scheme_of


def blob_type(settings: Settings) -> str:
    """The blob backend's type: as configured, else in-memory beside ``memory://``, database beside
    PostgreSQL, else local."""
    config = settings.storage.blob_store
    if "type" not in config.model_fields_set:
        scheme = scheme_of(settings.database_url)
        if scheme == "memory":
            return "in-memory"
        if scheme in ("postgresql", "postgres"):
            return "database"  # every server on the database sees the same blobs; local files would not
    return config.type


def default_root(database_url: str) -> Path:
    """Where a local blob store lives when ``store_path`` names no place: beside the database's files."""
    scheme = scheme_of(database_url)
    if scheme == "sqlite":
        from engram.stores.sqlite import parse_sqlite_url

        path = parse_sqlite_url(database_url)[0].absolute()
        return path.with_name(f"{path.stem}-blobs")
    if scheme == "json":
        from engram.stores.jsonfiles import parse_json_url

        directory = parse_json_url(database_url).absolute()
        return directory.with_name(f"{directory.name}-blobs")
    # A server database has no files to sit beside: a directory per database (by its URL without
    # the password), so two databases on one machine never share blobs.
    digest = hashlib.blake2b(redact(database_url).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return default_data_dir() / "blobs" / f"{scheme}-{digest}"


def open_backend(settings: Settings, store: Store) -> BlobBackend:
    kind = blob_type(settings)
    if kind == "in-memory":
        from engram.blobs.memory import InMemoryBlobs

        return InMemoryBlobs()
    if kind == "database":
        from engram.blobs.database import DatabaseBlobs

        return DatabaseBlobs(store)
    from engram.blobs.local import LocalBlobs

    configured = settings.storage.blob_store.store_path
    return LocalBlobs(Path(configured).expanduser() if configured else default_root(settings.database_url))


def blob_limits(settings: Settings) -> tuple[int, int]:
    """(per-blob limit, per-project total limit) in bytes: as configured, else the type's defaults."""
    config = settings.storage.blob_store
    default_blob, default_total = BLOB_LIMITS[blob_type(settings)]
    return config.max_blob_size or default_blob, config.max_total_size or default_total


def open_blob_store(settings: Settings, store: Store, *, project: str = "default") -> BlobStore:
    """The blob store of ``project`` beside ``store``, as ``settings`` configure it.

    Raises:
        ConfigError: ``database`` blobs over a database that is not SQLite or PostgreSQL.
    """
    blob_limit, total_limit = blob_limits(settings)
    return BlobStore(
        open_backend(settings, store),
        project=project,
        blob_limit=blob_limit,
        total_limit=total_limit,
        cleanup_after_days=settings.storage.blob_store.cleanup_after_days,
        referenced=lambda: referenced_blob_ids(store),
    )
