"""Shared test machinery: the backend registry every backend-parametrized test uses.

A new backend joins the whole suite (conformance, property and async tests) by
adding ONE entry to ``BACKEND_FACTORIES``: a context manager that takes an
empty scratch directory, yields the URL of a fresh, empty store, and cleans up
after itself. Backends that need a server call :func:`require_service` first.

Tests that need a capability a backend may lack are marked
``@pytest.mark.requires("fts")`` (names from ``engram.stores.base``); they are
skipped exactly on backends whose ``Store.capabilities`` lacks it.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

import engram
from engram.stores import base as store_base
from engram.stores.registry import store_class

# -- services ------------------------------------------------------------------


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require_service(name: str, host: str, port: int, how_to_start: str) -> None:
    """Skip (locally) or fail (on CI) unless ``host:port`` accepts TCP connections.

    On CI (``CI`` is ``true`` or ``1``) a missing service is an error, so a
    backend's tests can never pass by being silently skipped.
    """
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc.strerror or exc}); {how_to_start}"
    if _ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


POSTGRES = ("PostgreSQL", "127.0.0.1", 5432, "start it with `sudo service postgresql start` (see DEVELOPERS.md)")
REDIS = ("Redis", "127.0.0.1", 6379, "start it with `sudo service redis-server start` (see DEVELOPERS.md)")

# -- backends ------------------------------------------------------------------

BackendFactory = Callable[[Path], AbstractContextManager[str]]


@contextmanager
def _memory_backend(scratch: Path) -> Iterator[str]:
    yield "memory://"


@contextmanager
def _sqlite_backend(scratch: Path) -> Iterator[str]:
    yield f"sqlite:///{scratch / 't.db'}"


@contextmanager
def _json_backend(scratch: Path) -> Iterator[str]:
    (scratch / "store").mkdir(exist_ok=True)  # a json:// store never creates its directory
    yield f"json:///{scratch / 'store'}"


POSTGRES_TEST_URL = f"postgresql://postgres@{POSTGRES[1]}:{POSTGRES[2]}/test"
REDIS_TEST_URL = f"redis://{REDIS[1]}:{REDIS[2]}/13"


@contextmanager
def _postgres_backend(scratch: Path) -> Iterator[str]:
    """A fresh schema in the ``test`` database (small pool), dropped afterwards."""
    require_service(*POSTGRES)
    import psycopg

    schema = f"engram_test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_TEST_URL}?schema={schema}&pool_size=1&max_overflow=8"
    with psycopg.connect(POSTGRES_TEST_URL, autocommit=True) as conn:
        # Our own generated name, and the schemas a server derives from it (its control
        # plane, s_control, and its projects, s_p_<id>).
        derived = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s", (schema, schema + "\\_%")
        ).fetchall()
        for (name,) in derived:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


class _PgServer:
    """One PostgreSQL 16 with pgvector (the ``pgserver`` wheel) per test session, started on first use.

    The system PostgreSQL has no pgvector; this one runs from a temporary directory
    (started in ~3-5 s, deleted at exit). Locally a failure to start skips the tests
    that need it; on CI it fails them, like a missing service.
    """

    uri: str | None = None
    problem: str | None = None
    pid: int | None = None

    @classmethod
    def url(cls) -> str:
        if cls.uri is None and cls.problem is None:
            try:
                import tempfile

                import pgserver
                import psycopg

                server = pgserver.get_server(tempfile.mkdtemp(prefix="engram-pg-"), cleanup_mode="delete")
                uri = server.get_uri().replace("postgres:@", "postgres@")  # no empty password to redact
                with psycopg.connect(uri, autocommit=True) as conn:  # throwaway data: no need to be durable
                    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                        conn.execute(f"ALTER SYSTEM SET {setting} = off")
                    conn.execute("SELECT pg_reload_conf()")
                cls.uri, cls.pid = uri, server.get_pid()
            except Exception as exc:
                cls.problem = f"pgserver (PostgreSQL + pgvector) could not start: {exc!r}; pip install 'pgserver>=0.1.4'"
        if cls.uri is None:
            if _ci():
                pytest.fail(cls.problem or "pgserver did not start", pytrace=False)
            pytest.skip(cls.problem or "pgserver did not start")
        return cls.uri

    @classmethod
    def stop(cls) -> None:
        """Stop it at once (an immediate shutdown: its data is thrown away; pgserver then deletes it)."""
        if cls.pid is not None:
            import signal
            import time

            os.kill(cls.pid, signal.SIGQUIT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(cls.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            cls.pid = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    _PgServer.stop()


@contextmanager
def _pgvector_backend(scratch: Path) -> Iterator[str]:
    """A fresh schema in a PostgreSQL with pgvector (pgserver), dropped afterwards."""
    import psycopg

    base = _PgServer.url()
    schema = f"engram_test_{uuid.uuid4().hex[:12]}"
    yield f"{base}&schema={schema}&pool_size=1&max_overflow=8"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # our own generated name


@contextmanager
def _redis_backend(scratch: Path) -> Iterator[str]:
    """A fresh key prefix in Redis DB 13, its keys deleted afterwards.

    A prefix rather than FLUSHDB, so that test runs sharing the server never wipe each other.
    """
    require_service(*REDIS)
    import redis

    prefix = f"engram-test-{uuid.uuid4().hex[:12]}"
    yield f"{REDIS_TEST_URL}?prefix={prefix}"
    with redis.Redis.from_url(REDIS_TEST_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema (skips, or fails on CI, without a server)."""
    with _postgres_backend(tmp_path) as url:
        yield url


@pytest.fixture
def pgvector_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh schema in a PostgreSQL with pgvector (skips, or fails on CI, when it cannot start)."""
    with _pgvector_backend(tmp_path) as url:
        yield url


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh Redis key prefix (skips, or fails on CI, without a server)."""
    with _redis_backend(tmp_path) as url:
        yield url


@pytest.fixture
def url_of(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str, str], str]:
    """``url_of(backend, name)``: the URL of a fresh store ``name`` of that backend (memory, sqlite, json,
    postgres, pgvector, redis), for tests that need two stores at once."""

    def make(backend: str, name: str) -> str:
        if backend == "memory":
            return "memory://"
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / (name + '.db')}"
        if backend == "json":
            (tmp_path / name).mkdir(exist_ok=True)
            return f"json:///{tmp_path / name}"
        return request.getfixturevalue(f"{backend}_url")

    return make


# name -> factory: one line per backend.
BACKEND_FACTORIES: dict[str, BackendFactory] = {
    "memory": _memory_backend,
    "sqlite": _sqlite_backend,
    "json": _json_backend,
    "postgresql": _postgres_backend,
    "pgvector": _pgvector_backend,
    "redis": _redis_backend,
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--deployment-seconds", type=float, default=20.0,
        help="How long tests/server/test_deployment.py runs its clients (the issue's run: 60).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(*capabilities): skip on backends that do not declare these capabilities"
    )


@pytest.fixture(autouse=True)
def _no_engram_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own ENGRAM_* settings or config file."""
    for name in list(os.environ):
        if name.startswith("ENGRAM_"):
            monkeypatch.delenv(name)
    # Full-text only unless a test asks for an embedder: the local model would
    # make every store() embed, and auto search hybrid, in tests about other things.
    monkeypatch.setenv("ENGRAM_EMBEDDER", "none")


@pytest.fixture(scope="session", params=sorted(BACKEND_FACTORIES))
def backend_name(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (a key of ``BACKEND_FACTORIES``)."""
    return request.param


# Every capability name declared in engram.stores.base (FTS = "fts", VACUUM = "vacuum", ...).
KNOWN_CAPABILITIES = frozenset(
    value for name, value in vars(store_base).items() if name.isupper() and isinstance(value, str)
)


def skip_unless_capable(request: pytest.FixtureRequest, capabilities: frozenset[str], backend: str) -> None:
    """Skip the test when it is marked ``requires(...)`` with a capability the backend lacks."""
    wanted = {cap for mark in request.node.iter_markers("requires") for cap in mark.args}
    unknown = sorted(wanted - KNOWN_CAPABILITIES)
    if unknown:  # a typo must not turn into a silent skip
        pytest.fail(f"requires() names unknown capability {', '.join(unknown)}; known: {sorted(KNOWN_CAPABILITIES)}")
    missing = sorted(wanted - capabilities)
    if missing:
        pytest.skip(f"the {backend} backend lacks capability {', '.join(missing)}")


class MemoryFactory:
    """Builds fresh, empty stores of one backend; closes them all at teardown."""

    def __init__(self, backend: str, root: Path, request: pytest.FixtureRequest | None = None):
        self.backend = backend
        self.root = root
        self._request = request
        self._counter = itertools.count()
        self._cleanups: list[Callable[[], Any]] = []

    def url(self) -> str:
        """The URL of a new, empty store of this backend."""
        scratch = self.root / f"store{next(self._counter)}"
        scratch.mkdir(parents=True)
        cm = BACKEND_FACTORIES[self.backend](scratch)
        url = cm.__enter__()
        self._cleanups.append(lambda: cm.__exit__(None, None, None))
        self.skip_unless_capable(store_class(url).capabilities)
        return url

    def __call__(self, url: str | None = None, **settings: Any) -> engram.Memory:
        """A new ``Memory`` on a fresh store (or on ``url``); ``settings`` go to load_settings."""
        memory = engram.Memory(settings=engram.load_settings(database_url=url or self.url(), **settings))
        self._cleanups.append(memory.close)
        return memory

    def skip_unless_capable(self, capabilities: frozenset[str]) -> None:
        """Skip the requesting test when its ``requires`` marks name a capability not declared."""
        if self._request is not None:
            skip_unless_capable(self._request, capabilities, self.backend)

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()
        self._cleanups.clear()


@pytest.fixture
def memory_factory(request: pytest.FixtureRequest, backend_name: str, tmp_path: Path) -> Iterator[MemoryFactory]:
    """``memory_factory(**settings)`` -> a fresh ``engram.Memory`` of the backend under test."""
    factory = MemoryFactory(backend_name, tmp_path, request)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def factory_of(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], MemoryFactory]]:
    """``factory_of("sqlite")`` -> a module-scoped MemoryFactory of that backend (for hypothesis tests,
    whose examples share one store, and for tests that compare two backends)."""
    factories: list[MemoryFactory] = []
    # Module-scoped stores are built before the autouse environment fixture runs:
    # give them the same full-text-only setting.
    patch = pytest.MonkeyPatch()
    patch.setenv("ENGRAM_EMBEDDER", "none")

    def make(backend: str) -> MemoryFactory:
        factory = MemoryFactory(backend, tmp_path_factory.mktemp(backend))
        factories.append(factory)
        return factory

    try:
        yield make
    finally:
        for factory in factories:
            factory.close()
        patch.undo()
