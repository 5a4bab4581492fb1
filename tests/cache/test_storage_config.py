"""The ``storage:`` section: validation naming the field, the database it names, and the
four example configurations of ``examples/config/`` loaded and run against real services
(SQLite files, PostgreSQL at 127.0.0.1:5432, Redis at 127.0.0.1:6379)."""

from __future__ import annotations

from pathlib import Path

import pytest

import engram
from engram.config import load_settings
from engram.errors import ConfigError
from tests.conftest import POSTGRES, REDIS, require_service

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "config"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engram.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("yaml_text", "path", "says"),
    [
        (
            "storage: {cache: {type: postgres}}",
            "storage.cache.type",
            "'in-memory' or 'redis'",
        ),
        (
            "storage: {cache: {type: redis, max_entries: -5}}",
            "storage.cache.max_entries",
            "greater than or equal to 1",
        ),
        (
            "storage: {cache: {type: redis, colour: red}}",
            "storage.cache.colour",
            "unknown key",
        ),
        (
            "storage: {cache: {type: redis, options: {speed: 11}}}",
            "storage.cache.options",
            "unknown option(s) 'speed'",
        ),
        (
            "storage: {cache: {type: in-memory, url: 'redis://x'}}",
            "storage.cache",
            "in-memory cache takes no url",
        ),
        (
            "storage: {database: {type: mongodb}}",
            "storage.database.type",
            "'in-memory', 'sqlite', 'postgres' or 'redis'",
        ),
        (
            "storage: {database: {type: postgres, maxConnections: 0}}",
            "storage.database.maxConnections",
            "greater than",
        ),
        (
            "storage: {blob_store: {max_blob_size: -1}}",
            "storage.blob_store.max_blob_size",
            "greater than or equal to 1",
        ),
        (
            "storage: {blobStore: {type: s3}}",
            "storage.blobStore.type",
            "'in-memory', 'local' or 'database'",
        ),
        ("storage: {caches: {}}", "storage.caches", "unknown key"),
        (
            "storage: {database: {type: postgres, port: 99999}}",
            "storage.database.port",
            "less than or equal to 65535",
        ),
    ],
)
def test_every_mistake_is_a_config_error_naming_the_field(
    tmp_path: Path, yaml_text: str, path: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, yaml_text))
    assert f"{path}: " in str(caught.value) and says in str(caught.value)


@pytest.mark.parametrize(
    ("yaml_text", "says"),
    [
        (
            "storage: {database: {type: postgres}}",
            "storage.database (type postgres) needs url",
        ),
        (
            "storage: {database: {type: postgres, url: 'redis://x'}}",
            "storage.database.url must be a postgresql://",
        ),
        (
            "storage: {database: {type: sqlite, path: /tmp/x.db, options: {journal: wal}}}",
            "options.journal: unknown for sqlite",
        ),
    ],
)
def test_a_database_section_that_names_no_usable_database_says_what_to_change(
    tmp_path: Path, yaml_text: str, says: str
) -> None:
    with pytest.raises(
        ConfigError, match=r".*" + says.replace("(", r"\(").replace(")", r"\)")
    ):
        load_settings(write(tmp_path, yaml_text))


def test_a_redis_cache_without_url_or_host_is_refused_when_opened(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        write(tmp_path, "storage: {cache: {type: redis}}"), database_url="memory://"
    )
    with pytest.raises(ConfigError, match=r"storage.cache \(type redis\) needs url"):
        engram.Memory(settings=settings)


def test_the_database_from_parts_with_its_pool_and_timeouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "p@ss word")
    settings = load_settings(
        write(
            tmp_path,
            """
storage:
  database:
    type: postgres
    host: db.example.com
    database: engram
    user: agent
    password: ${DB_PASSWORD}
    maxConnections: 20
    idleTimeoutMillis: 30000
    connectionTimeoutMillis: 5000
    options: {ssl: true, application_name: engram-agent, statement_timeout: 30000}
""",
        )
    )
    assert settings.database_url == (
        "postgresql://agent:p%40ss%20word@db.example.com:5432/engram?sslmode=require&application_name=engram-agent"
        "&options=-c+statement_timeout%3D30000"
    )
    pool = settings.db_connection_settings
    assert pool.pool_size + pool.max_overflow == 20 and pool.pool_max_idle == 30.0
    assert settings.db_connect_timeout == 5.0
    from engram.stores.postgres.store import pool_arguments

    assert pool_arguments(pool)["max_size"] == 20 and pool_arguments(pool)["max_idle"] == 30.0


def test_sqlite_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    file = load_settings(
        write(tmp_path, "storage: {database: {type: sqlite, path: ./data/a.db}}")
    )
    assert file.database_url == f"sqlite:///{tmp_path / 'data' / 'a.db'}"
    directory = load_settings(
        write(
            tmp_path,
            "storage: {database: {type: sqlite, path: /var/x, database: a.sqlite}}",
        )
    )
    assert directory.database_url == "sqlite:////var/x/a.sqlite"
    memory = load_settings(write(tmp_path, "storage: {database: {type: in-memory}}"))
    assert memory.database_url == "memory://"


def test_flat_settings_and_the_environment_win_over_the_storage_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, "storage: {database: {type: in-memory, maxConnections: 9}}\n"
    )
    assert (
        load_settings(path, database_url="sqlite:///x.db").database_url
        == "sqlite:///x.db"
    )
    monkeypatch.setenv("ENGRAM_DATABASE_URL", "sqlite:///from-env.db")
    assert load_settings(path).database_url == "sqlite:///from-env.db"
    monkeypatch.setenv(
        "ENGRAM_DB_CONNECTION_SETTINGS", '{"pool_size": 2, "max_overflow": 2}'
    )
    pool = load_settings(path).db_connection_settings
    assert (pool.pool_size, pool.max_overflow) == (2, 2)
    flat = write(
        tmp_path,
        "database_url: memory://\nstorage: {database: {type: sqlite, path: /nowhere/a.db}}\n",
    )
    monkeypatch.delenv("ENGRAM_DATABASE_URL")
    assert load_settings(flat).database_url == "memory://"


def test_the_storage_section_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "ENGRAM_STORAGE",
        '{"cache": {"type": "in-memory", "maxEntries": 5}, "database": {"type": "in-memory"}}',
    )
    settings = load_settings()
    assert (
        settings.storage.cache.max_entries == 5 and settings.database_url == "memory://"
    )


def test_dexto_spellings_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/0")
    settings = load_settings(
        write(
            tmp_path,
            """
storage:
  cache: {type: redis, url: $REDIS_URL, maxConnections: 100, idleTimeoutMillis: 10000,
          options: {keyPrefix: agent, commandTimeout: 5000, maxRetriesPerRequest: 3}}
  database: {type: postgres, connectionString: 'postgresql://u@h/d', maxConnections: 25}
  blob: {type: local, storePath: /tmp/blobs, maxBlobSize: 1024, maxTotalSize: 4096, cleanupAfterDays: 7}
""",
        )
    )
    cache = settings.storage.cache
    assert (
        cache.url,
        cache.max_connections,
        cache.option("key_prefix"),
        cache.option("max_retries"),
    ) == ("redis://localhost:6379/0", 100, "agent", 3)
    blobs = settings.storage.blob_store
    assert (
        blobs.store_path,
        blobs.blob_limit,
        blobs.total_limit,
        blobs.cleanup_after_days,
    ) == ("/tmp/blobs", 1024, 4096, 7)
    assert settings.database_url == "postgresql://u@h/d"


# -- the four example configurations, loaded and run ----------------------------------------


def exercise(settings: engram.Settings) -> None:
    with engram.Memory(settings=settings) as memory:
        memory.store(
            "greeting",
            "hello from the example configuration",
            metadata={"example": True},
        )
        assert [
            h.entry.key for h in memory.search("example configuration").results
        ] == ["greeting"]
        memory.cache.set("answer", {"value": 42}, ttl=60)
        assert memory.cache.get("answer") == {"value": 42}
        memory.caches.backend.clear(
            memory.caches.namespace
        )  # everything of this store, bookkeeping too


def test_example_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(EXAMPLES / "default.yaml")
    assert (
        settings.database_url == "memory://"
        and settings.storage.cache.type == "in-memory"
    )
    exercise(settings)


def test_example_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    settings = load_settings(EXAMPLES / "sqlite.yaml")
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'engram.db'}"
    exercise(settings)
    assert (tmp_path / "data" / "engram.db").is_file()


def test_example_hybrid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_service(*REDIS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("REDIS_HOST", REDIS[1])
    monkeypatch.setenv("REDIS_PORT", str(REDIS[2]))
    settings = load_settings(EXAMPLES / "hybrid.yaml")
    assert settings.storage.cache.redis_url() == f"redis://{REDIS[1]}:{REDIS[2]}"
    exercise(settings)


def test_example_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str
) -> None:
    require_service(*POSTGRES)
    monkeypatch.setenv("REDIS_URL", redis_url.split("?")[0])
    monkeypatch.setenv(
        "POSTGRES_CONNECTION_STRING", postgres_url.split("&")[0]
    )  # keep the test's schema
    monkeypatch.setenv("ENGRAM_BLOB_DIR", str(tmp_path / "blobs"))
    settings = load_settings(EXAMPLES / "production.yaml")
    pool = settings.db_connection_settings
    assert (
        settings.database_url.startswith("postgresql://")
        and pool.pool_size + pool.max_overflow == 25
    )
    assert (
        settings.storage.cache.max_connections == 100
        and settings.storage.cache.search_results
    )
    exercise(settings)
    with engram.Memory(settings=settings) as memory:
        assert (
            memory.caches.backend.shared
            and memory.caches.backend.max_connections == 100
        )
