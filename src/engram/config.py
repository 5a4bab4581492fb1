"""Settings: arguments > ``ENGRAM_*`` environment > YAML config file > defaults.

The only module that reads the environment. The config file is named by
``--config`` or ``ENGRAM_CONFIG``; its string values may use ``$VAR``,
``${VAR}`` and ``${VAR:-default}``. It is read with ``yaml.safe_load``: data,
never code.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from engram.errors import ConfigError
from engram.storage_settings import StorageSettings

APP_NAME = "engram"
# The parsed config file for the Settings() call under way (pydantic-settings
# builds its sources from the class, so the file's data cannot be an argument).
_file_data: ContextVar[dict[str, Any]] = ContextVar("engram_config_file", default={})
_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def default_data_dir() -> Path:
    """Where engram keeps its data: the user data directory, not a cache others may wipe."""
    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'engram.db'}"


def expand_vars(value: Any, environ: dict[str, str], source: str) -> Any:
    """Expand ``$VAR``/``${VAR}``/``${VAR:-default}`` in every string of a YAML tree."""
    if isinstance(value, dict):
        return {k: expand_vars(v, environ, source) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, environ, source) for v in value]
    if not isinstance(value, str):
        return value

    def replace(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("plain")
        default = m.group("default")
        if name in environ and not (default is not None and environ[name] == ""):
            return environ[name]  # ${VAR:-default}, as in the shell, also replaces an empty VAR
        if default is not None:
            return default
        raise ConfigError(f"{source} uses ${name}, but the environment variable {name} is not set")

    return _VAR.sub(replace, value)


def read_config_file(path: Path, environ: dict[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return expand_vars(data, environ, f"config file {path}")


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]):
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


class DBConnectionSettings(BaseModel):
    """Connection-pool settings of the server backends, under the names SQLAlchemy users know.

    Set as JSON in ``ENGRAM_DB_CONNECTION_SETTINGS``; keys left out keep their
    defaults. PostgreSQL maps them onto ``psycopg_pool.ConnectionPool``:
    ``pool_size`` connections are kept open, at most ``pool_size + max_overflow``
    exist, a caller waits ``pool_timeout`` seconds for one, ``pool_pre_ping``
    checks a connection when it is handed out, ``pool_recycle`` is the maximum
    age of a connection in seconds, ``pool_max_idle`` closes a connection idle
    that long (seconds) while the pool has more than ``pool_size``, ``echo`` logs
    every SQL statement at DEBUG.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Small by default: every process holds up to pool_size + max_overflow (4) connections,
    # so 20 processes fit a stock server's max_connections = 100 with room to spare.
    pool_size: int = Field(1, ge=0, le=1000)
    max_overflow: int = Field(3, ge=0, le=1000)
    pool_timeout: float = Field(30.0, gt=0)
    pool_pre_ping: bool = True
    pool_recycle: float = Field(1800.0, gt=0)
    pool_max_idle: float = Field(600.0, gt=0)
    echo: bool = False

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(str(k) for k in value if k not in cls.model_fields)
            if unknown:
                raise ValueError(
                    f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(cls.model_fields)}"
                )
        return value


class Settings(BaseSettings):
    """Every setting of engram. Environment names are ``ENGRAM_`` + the field name in capitals."""

    model_config = SettingsConfigDict(env_prefix="ENGRAM_", extra="forbid", validate_default=True)

    database_url: str = Field(default_factory=default_database_url, description="Where the store lives.")
    max_content_bytes: int = Field(1024 * 1024, ge=1, description="Largest content accepted, in bytes.")
    async_workers: int = Field(4, ge=1, le=64, description="Worker threads behind AsyncMemory.")
    embedder: Literal["auto", "local", "openai", "none"] = Field(
        "auto",
        description="What turns text into vectors: local (offline all-MiniLM-L6-v2, extra engram[local]), "
        "openai (an OpenAI-compatible /v1/embeddings endpoint), none (full-text only), "
        "auto (local when engram[local] is installed, else none).",
    )
    embedding_model: str | None = Field(
        None, description="Model name: for local, a model directory or all-MiniLM-L6-v2-int8 (int8, faster "
        "queries, its own vectors); the served model for openai."
    )
    embedding_base_url: str = Field("https://api.openai.com/v1", description="Base URL of the openai embedder.")
    embedding_api_key: SecretStr | None = Field(
        None, description="API key of the openai embedder (sent as a Bearer token); never printed."
    )
    embedding_dimensions: int | None = Field(
        None, ge=1, le=65536, description="Vector size; asked of the openai endpoint when set."
    )
    embedding_timeout: float = Field(30.0, gt=0, description="Seconds before one embeddings request times out.")
    embedding_retries: int = Field(3, ge=0, le=10, description="Retries of a failed embeddings request, with backoff.")
    embedding_batch_size: int = Field(64, ge=1, le=4096, description="Texts per embedding batch.")
    int8_queries: bool = Field(
        True, description="local embedder, shipped model: embed search queries with its int8 matrix products "
        "(~1.5x faster; within 0.998 cosine of the exact vector, LoCoMo recall unchanged); stored entries are "
        "embedded exactly either way. false: exact queries."
    )
    embedding_cache_size: int = Field(
        10_000, ge=0, description="Embeddings kept in this process, keyed by (model, content hash), in front of a "
        "shared (Redis) cache; 0 turns embedding caching off."
    )
    vector_exact_max: int | None = Field(
        None, ge=0, description="Namespaces with more vectors than this are searched with an HNSW index "
        "(default: 20,000 for the in-process index, 2,000 with pgvector, whose exact scan runs in SQL)."
    )
    search_relevance_floor: float = Field(
        0.2, ge=-1.0, le=1.0,
        description="In hybrid search (and auto, which runs it), an entry found only by meaning needs at least "
        "this cosine similarity to the query; a search's threshold argument replaces it.",
    )
    max_request_bytes: int = Field(
        32 * 1024 * 1024, ge=1, description="Largest request body the server reads, in bytes (413 above it)."
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible API, e.g. https://api.openai.com/v1 (summaries, profiles).")
    llm_model: str | None = Field(None, description="Chat model name for summaries and profiles.")
    llm_api_key: SecretStr | None = Field(None, description="API key sent as a Bearer token; never printed.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for one LLM response.")
    llm_max_retries: int = Field(3, ge=0, le=10, description="Retries of a failed LLM call (exponential backoff).")
    llm_summary_every: int = Field(10, ge=1, description="Update a session summary after this many new messages.")
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key(s) encrypting server variables, comma-separated, newest first "
        "(default: a generated key file beside the database).",
    )
    admin_key: SecretStr | None = Field(
        None, description="API key the server accepts as its first admin key (default: one is generated)."
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description="Proxies whose X-Forwarded-For / Forwarded headers the server believes: comma-separated "
        "IP addresses or networks, or '*' (default: none; the direct peer is the client).",
    )
    auth_failures_url: str | None = Field(
        None,
        description="Where the server counts failed authentications, shared by every server that names the same "
        "place: redis://host:6379/0 (option prefix=...), or memory:// for this process only (default: the "
        "server's database when it is PostgreSQL, else this process's memory).",
    )
    db_connection_settings: DBConnectionSettings = Field(
        default_factory=DBConnectionSettings,
        description="Connection pool of the PostgreSQL backend (JSON in the environment).",
    )
    db_connect_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a database server to answer a connect.")
    storage: StorageSettings = Field(
        default_factory=StorageSettings,
        description="The cache, database and blob-store layers (the config file's storage: section; JSON in the environment).",
    )

    @model_validator(mode="after")
    def _storage_database(self) -> "Settings":
        """``storage.database`` names the database where no flat setting (argument, ENGRAM_*, file) does."""
        layer = self.storage.database
        if layer is None:
            return self
        given = self.model_fields_set
        if "database_url" not in given:
            self.database_url = layer.to_url(default_data_dir())
        if "db_connection_settings" not in given:
            pool = self.db_connection_settings
            update: dict[str, Any] = {}
            if layer.max_connections is not None:
                size = min(pool.pool_size, layer.max_connections)
                update.update(pool_size=size, max_overflow=layer.max_connections - size)
            if layer.idle_timeout_ms is not None:
                update["pool_max_idle"] = max(layer.idle_timeout_ms, 1) / 1000
            if update:
                kept = pool.model_dump(include=pool.model_fields_set)
                self.db_connection_settings = DBConnectionSettings.model_validate({**kept, **update})
        if layer.connection_timeout_ms is not None and "db_connect_timeout" not in given:
            self.db_connect_timeout = layer.connection_timeout_ms / 1000
        return self

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str | None) -> str | None:
        import ipaddress

        for item in (value or "").split(","):
            if item.strip() and item.strip() != "*":
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"'*' or IP addresses and networks, comma-separated; {item.strip()!r} is neither") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a URL such as sqlite:///path/to/engram.db or memory://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, _file_data.get()))


def _problem(err: Any) -> str:
    """One validation error as ``path.of.field: what is wrong`` (what to change, where)."""
    where = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key; remove it or correct its spelling"
    return f"{where}: {message}" if where else message


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build settings from arguments, environment, config file and defaults, in that order.

    Raises:
        ConfigError: the config file is unreadable or a value is invalid or unknown.
    """
    environ = dict(os.environ)
    path = config_file or environ.get("ENGRAM_CONFIG")
    file_data = read_config_file(Path(path), environ) if path else {}
    unknown = set(file_data) - set(Settings.model_fields)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in config file {path}: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(Settings.model_fields)}"
        )
    overrides = {k: v for k, v in overrides.items() if v is not None}
    token = _file_data.set(file_data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {'; '.join(map(_problem, exc.errors()))}") from exc
    except SettingsError as exc:  # e.g. an ENGRAM_* variable that should hold JSON and does not
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"invalid settings: {exc}{cause}") from exc
    finally:
        _file_data.reset(token)
