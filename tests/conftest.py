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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

import engram
from engram.stores.base import FTS, MULTIPROCESS, PERSISTENT, VACUUM

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


# name -> factory. A later backend adds one line here, e.g.
#   "postgresql": _postgres_backend,  (calls require_service(*POSTGRES), yields a URL
#                                      to a fresh schema and drops it afterwards)
BACKEND_FACTORIES: dict[str, BackendFactory] = {
    "memory": _memory_backend,
    "sqlite": _sqlite_backend,
}


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


@pytest.fixture(scope="session", params=sorted(BACKEND_FACTORIES))
def backend_name(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (a key of ``BACKEND_FACTORIES``)."""
    return request.param


KNOWN_CAPABILITIES = frozenset({FTS, MULTIPROCESS, PERSISTENT, VACUUM})


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
        return url

    def __call__(self, url: str | None = None, **settings: Any) -> engram.Memory:
        """A new ``Memory`` on a fresh store (or on ``url``); ``settings`` go to load_settings."""
        memory = engram.Memory(settings=engram.load_settings(database_url=url or self.url(), **settings))
        self._cleanups.append(memory.close)
        self.skip_unless_capable(memory.backend.capabilities)
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
