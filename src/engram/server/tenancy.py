"""Where each project's data lives, and the open ``Memory`` of every project.

Each project gets its own store, derived from the server's base URL, so one
project's queries cannot reach another's rows whatever a route does:

- ``sqlite:///dir/engram.db``: the project named ``default`` is that file
  (so the CLI and the server's default project see the same memories); any
  other project is ``dir/engram-projects/<project-id>.db``; the secret key
  file is ``dir/engram-secret.key``.
- ``memory://``: one in-process store per project.
- ``postgresql://.../db?schema=s``: the ``default`` project is that schema;
  any other project is the schema ``s_p_<project-id>`` of the same database
  (``engram_p_<project-id>`` without ``schema``). A schema per project, not a
  project column: the PostgreSQL store's queries stay as they are, and a
  project's tables hold only its rows (docs/deploying.md has the measurement).
  Several servers share the database, so variables need ``ENGRAM_SECRET_KEY``
  (a key file on one machine would not reach the others).
- other schemes: not a server base (a clear ``ConfigError``).

The control plane's store comes from the backend registry, by the base URL's
scheme (``control_store_class``): ``dir/engram-control.db`` for SQLite, an
in-process one for ``memory://``, the schema ``s_control`` for PostgreSQL.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engram.cache import open_cache_backend
from engram.config import Settings
from engram.errors import ConfigError
from engram.memory import Memory
from engram.server.control import DEFAULT_PROJECT, ControlPlane
from engram.server.models import Project
from engram.stores._files import ensure_directory
from engram.stores.registry import control_store_class, scheme_of

SERVER_SCHEMES = ("sqlite", "memory", "postgresql")
POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class Layout:
    """The files of a server beside its base store (all None for memory://)."""

    projects: Path | None
    key_file: Path | None


def layout(base_url: str) -> Layout:
    scheme = scheme_of(base_url)
    if scheme == "memory" or scheme in POSTGRES_SCHEMES:
        return Layout(None, None)
    if scheme == "sqlite":
        from engram.stores.sqlite import parse_sqlite_url

        path, _ = parse_sqlite_url(base_url)
        return Layout(
            projects=path.with_name(f"{path.stem}-projects"),
            key_file=path.with_name(f"{path.stem}-secret.key"),
        )
    raise ConfigError(
        f"the server keeps its projects in {' or '.join(s + '://' for s in SERVER_SCHEMES)} for now; "
        f"{scheme}:// cannot be the server's database yet"
    )


def project_url(base_url: str, project: Project) -> str:
    """The URL of ``project``'s own store."""
    if project.name == DEFAULT_PROJECT:
        return base_url
    scheme = scheme_of(base_url)
    if scheme == "memory":
        return f"memory://project-{project.id}"
    if scheme in POSTGRES_SCHEMES:
        from engram.stores.postgres.control import project_schema, with_schema

        return with_schema(base_url, project_schema(base_url, project.id))
    where = layout(base_url).projects
    assert where is not None
    query = urlsplit(base_url).query
    return f"sqlite:///{where / (project.id + '.db')}" + (f"?{query}" if query else "")


def blob_project(project: Project) -> str:
    """The project's namespace in a blob store: ``default`` for the default project (the CLI's
    blobs are its blobs), else its id, so projects sharing a ``store_path`` never meet."""
    return DEFAULT_PROJECT if project.name == DEFAULT_PROJECT else project.id


class Tenancy:
    """The control plane plus one open ``Memory`` per project, opened on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.base_url = settings.database_url
        self.layout = layout(self.base_url)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None

        shared = scheme_of(self.base_url) in POSTGRES_SCHEMES

        def vault():  # imported late: only variables need cryptography
            from engram.server.vault import Vault

            if shared and secret is None:
                raise ConfigError(
                    "variables on a PostgreSQL server need ENGRAM_SECRET_KEY, the same on every server "
                    "(make one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
                )
            return Vault.load(secret, self.layout.key_file)

        # One cache backend (one Redis pool) for every project; each project's keys have their own prefix.
        self.cache_backend = open_cache_backend(
            settings.storage.cache, pool_timeout=settings.db_connection_settings.pool_timeout
        )
        try:
            store_class = control_store_class(self.base_url)
            self.control = ControlPlane(store_class.for_server(self.base_url, settings=settings), vault)
        except BaseException:
            self.cache_backend.close()
            raise
        self._memories: dict[str, Memory] = {}
        self._lock = threading.Lock()

    def memory(self, project_id: str) -> Memory:
        """The open ``Memory`` of a project (cached; closed by :meth:`close`)."""
        memory = self._memories.get(project_id)
        if memory is not None:
            return memory
        with self._lock:
            memory = self._memories.get(project_id)
            if memory is None:
                project = self.control.project_by_id(project_id)
                url = project_url(self.base_url, project)
                if self.layout.projects is not None and project.name != DEFAULT_PROJECT:
                    ensure_directory(self.layout.projects, create=True)  # engram's own directory
                memory = Memory(
                    settings=self.settings.model_copy(update={"database_url": url}),
                    project=blob_project(project),
                    cache_backend=self.cache_backend,
                )
                self._memories[project_id] = memory
        return memory

    def close(self) -> None:
        with self._lock:
            memories, self._memories = list(self._memories.values()), {}
        for memory in memories:
            memory.close()
        self.control.close()
        self.cache_backend.close()

    def __enter__(self) -> "Tenancy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
