"""The URL registry: scheme -> backend, imported lazily, naming the extra when a driver is missing."""

from __future__ import annotations

import sys

import pytest

import engram
from engram.errors import ConfigError, MissingDependency
from engram.stores import registry
from engram.stores.base import FTS, MULTIPROCESS, PERSISTENT, VACUUM, Store
from engram.stores.memory import MemoryStore
from engram.stores.sqlite import SQLiteStore, parse_sqlite_url


def test_builtin_schemes():
    assert registry.store_class("sqlite:///x.db") is SQLiteStore
    assert registry.store_class("memory://") is MemoryStore
    assert registry.store_class("SQLITE:///x.db") is SQLiteStore  # schemes are case-insensitive


@pytest.mark.parametrize("url", ["mongodb://localhost/db", "ftp://x", "sqlite3:///x.db"])
def test_unknown_scheme_is_a_config_error(url):
    with pytest.raises(ConfigError) as info:
        registry.store_class(url)
    assert "unknown database URL scheme" in str(info.value)
    assert "sqlite://" in str(info.value) and "memory://" in str(info.value)  # says what would work


@pytest.mark.parametrize("url", ["just-a-path.db", "", None, 42])
def test_url_without_scheme_is_a_config_error(url):
    with pytest.raises(ConfigError, match="no scheme"):
        registry.store_class(url)


def test_missing_driver_names_the_extra(monkeypatch):
    monkeypatch.setitem(
        registry.BACKENDS, "fakedb", registry.Backend("engram_test_no_such_module.store:FakeStore", "fakedb")
    )
    with pytest.raises(MissingDependency) as info:
        registry.store_class("fakedb://host/db")
    message = str(info.value)
    assert "pip install 'engram[fakedb]'" in message
    assert "fakedb://" in message
    assert "engram_test_no_such_module" in message
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)


def test_missing_module_of_a_backend_without_extra(monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "fakedb", registry.Backend("engram_test_no_such_module:X", None))
    with pytest.raises(MissingDependency, match="reinstall engram"):
        registry.store_class("fakedb://")


def test_opening_through_memory_raises_the_same(monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "fakedb", registry.Backend("engram_test_no_such_module:X", "fakedb"))
    with pytest.raises(MissingDependency, match=r"pip install 'engram\[fakedb\]'"):
        engram.Memory("fakedb://somewhere")
    with pytest.raises(ConfigError, match="unknown database URL scheme"):
        engram.Memory("nosuch://somewhere")


def test_backends_are_imported_only_when_used(monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "lazy", registry.Backend("engram_test_lazy_backend:Store", "lazy"))
    assert "engram_test_lazy_backend" not in sys.modules  # registering imports nothing
    with pytest.raises(MissingDependency):
        registry.store_class("lazy://")


def test_a_registered_backend_plugs_in(monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "mem2", registry.Backend("engram.stores.memory:MemoryStore", None))
    with engram.Memory("mem2://") as memory:
        memory.store("k", "v")
        assert memory.get("k").content == "v"


def test_every_registered_target_names_a_module_and_class():
    for scheme, backend in registry.BACKENDS.items():
        module, _, cls = backend.target.partition(":")
        assert module.startswith("engram.stores."), scheme
        assert cls, scheme


def test_declared_capabilities():
    from engram.stores import base

    known = {value for name, value in vars(base).items() if name.isupper() and isinstance(value, str)}
    assert {FTS, MULTIPROCESS, PERSISTENT, VACUUM} <= known
    assert {FTS, MULTIPROCESS, PERSISTENT, VACUUM} <= SQLiteStore.capabilities
    assert FTS in MemoryStore.capabilities
    assert PERSISTENT not in MemoryStore.capabilities
    assert MULTIPROCESS not in MemoryStore.capabilities
    for cls in (SQLiteStore, MemoryStore):
        assert issubclass(cls, Store)
        assert cls.capabilities <= known


@pytest.mark.parametrize(
    "url, path, options",
    [
        ("sqlite:///rel.db", "rel.db", {}),
        ("sqlite:////abs/dir/x.db", "/abs/dir/x.db", {}),
        ("sqlite://localhost/rel.db", "rel.db", {}),
        ("sqlite:///with%20space.db", "with space.db", {}),
        ("sqlite:///x.db?busy_timeout=5", "x.db", {"busy_timeout": "5"}),
    ],
)
def test_parse_sqlite_url(url, path, options):
    parsed_path, parsed_options = parse_sqlite_url(url)
    assert str(parsed_path) == path
    assert parsed_options == options


@pytest.mark.parametrize(
    "url, words",
    [
        ("sqlite://host/x.db", ["has a host"]),
        ("sqlite://", ["names no file", "memory://"]),
        ("sqlite:///:memory:", ["names no file", "memory://"]),
    ],
)
def test_bad_sqlite_urls(url, words):
    with pytest.raises(ConfigError) as info:
        parse_sqlite_url(url)
    for word in words:
        assert word in str(info.value)


def test_sqlite_url_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown sqlite URL option.*colour"):
        engram.Memory(f"sqlite:///{tmp_path / 'x.db'}?colour=teal")
    with pytest.raises(ConfigError, match="busy_timeout must be a number"):
        engram.Memory(f"sqlite:///{tmp_path / 'x.db'}?busy_timeout=soon")
    with engram.Memory(f"sqlite:///{tmp_path / 'x.db'}?busy_timeout=2.5") as memory:
        assert memory.backend.busy_timeout == 2.5
