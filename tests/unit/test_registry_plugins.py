"""The open registry: schemes added at runtime (``register_backend``) and by installed
packages (the ``engram.backends`` entry-point group, read on the first unknown scheme)."""

from __future__ import annotations

import sys
import textwrap

import pytest

import engram
from engram.errors import ConfigError, InvalidInput, MissingDependency
from engram.stores import registry
from engram.stores.memory import MemoryStore
from engram.stores.sqlite import SQLiteStore


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test starts from the built-in schemes, entry points unread; both restored after."""
    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))
    monkeypatch.setattr(registry, "_entry_points_read", False)


class OtherStore(MemoryStore):
    """A third-party backend: here, the in-memory one under another name."""


def test_register_a_module_and_class_by_name():
    registry.register_backend("mem3", "engram.stores.memory:MemoryStore")
    assert registry.store_class("mem3://") is MemoryStore
    assert registry.store_class("MEM3://") is MemoryStore  # matched lower-cased, like the built-ins
    with engram.Memory("mem3://") as memory:
        memory.store("k", "v")
        assert memory.get("k").content == "v"


def test_register_a_class():
    registry.register_backend("other", OtherStore)
    with engram.Memory("other://") as memory:
        assert isinstance(memory.backend, OtherStore)
    assert "other://" in _unknown_scheme_message()


def test_a_registered_name_is_imported_only_when_opened():
    registry.register_backend("lazy2", "engram_test_lazy_plugin.store:Store", extra="fast", package="lazy-plugin")
    assert "engram_test_lazy_plugin" not in sys.modules
    with pytest.raises(MissingDependency, match=r"lazy2://.*pip install 'lazy-plugin\[fast\]'"):
        engram.Memory("lazy2://")


def test_registering_again_needs_clobber():
    registry.register_backend("other", OtherStore)
    registry.register_backend("other", OtherStore)  # the same target again: nothing to decide
    with pytest.raises(ConfigError, match=r"other:// scheme is already registered.*clobber=True"):
        registry.register_backend("other", "engram.stores.memory:MemoryStore")
    with pytest.raises(ConfigError, match="sqlite:// scheme is already registered to engram.stores.sqlite:SQLiteStore"):
        registry.register_backend("sqlite", OtherStore)
    registry.register_backend("other", "engram.stores.memory:MemoryStore", clobber=True)
    assert registry.store_class("other://") is MemoryStore


@pytest.mark.parametrize(
    "scheme, target, words",
    [
        ("My DB", OtherStore, ["'My DB' is not a URL scheme", "lower-case"]),
        ("Mydb", OtherStore, ["not a URL scheme"]),
        ("1db", OtherStore, ["not a URL scheme"]),
        ("", OtherStore, ["not a URL scheme"]),
        ("mydb", "engram.stores.memory.MemoryStore", ["must be 'module:Class'"]),
        ("mydb", "engram.stores.memory:", ["must be 'module:Class'"]),
        ("mydb", dict, ["subclass of engram.stores.base.Store"]),
        ("mydb", MemoryStore(url="memory://"), ["subclass of engram.stores.base.Store"]),
    ],
)
def test_bad_registrations_say_what_to_change(scheme, target, words):
    before = dict(registry.BACKENDS)
    with pytest.raises(InvalidInput) as info:
        registry.register_backend(scheme, target)
    for word in words:
        assert word in str(info.value)
    assert registry.BACKENDS == before


# -- entry points: a package installed on sys.path that declares a scheme ------------------
def _install_plugin(root, entry_points: str, name: str = "engram_test_plugin") -> None:
    """Write an installed distribution (its .dist-info and one module) into ``root``."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    (root / f"{name}.py").write_text(
        "from engram.stores.memory import MemoryStore\n\n\nclass PluginStore(MemoryStore):\n    pass\n"
    )


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("engram_test_plugin", None)


def test_an_entry_point_adds_a_scheme_read_on_first_use(plugin_path):
    _install_plugin(plugin_path, """
        [engram.backends]
        plugdb = engram_test_plugin:PluginStore
    """)
    assert "plugdb" not in registry.BACKENDS  # nothing read before a scheme is missing
    cls = registry.store_class("plugdb://anything")
    assert cls.__module__ == "engram_test_plugin" and cls.__name__ == "PluginStore"
    with engram.Memory("plugdb://") as memory:
        memory.store("k", "from a plug-in")
        assert memory.get("k").content == "from a plug-in"
    assert "plugdb://" in _unknown_scheme_message()


def test_an_entry_point_is_imported_only_when_its_scheme_is_opened(plugin_path):
    _install_plugin(plugin_path, """
        [engram.backends]
        plugdb = engram_test_plugin:PluginStore
    """)
    assert "plugdb://" in _unknown_scheme_message()  # listed among the known schemes ...
    assert "engram_test_plugin" not in sys.modules  # ... without importing it


def test_an_entry_point_cannot_replace_a_builtin_scheme(plugin_path):
    _install_plugin(plugin_path, """
        [engram.backends]
        sqlite = engram_test_plugin:PluginStore
    """)
    _unknown_scheme_message()
    assert registry.store_class("sqlite:///x.db") is SQLiteStore


def test_a_broken_entry_point_names_its_package(plugin_path):
    _install_plugin(plugin_path, """
        [engram.backends]
        gone = engram_test_plugin_missing_module:Store
        fast = engram_test_plugin_missing_module:Store [speed]
        bare = engram_test_plugin
    """)
    with pytest.raises(MissingDependency, match=r"gone:// backend needs engram_test_plugin_missing_module: reinstall engram-test-plugin"):
        registry.store_class("gone://")
    with pytest.raises(MissingDependency, match=r"pip install 'engram-test-plugin\[speed\]'"):
        registry.store_class("fast://")
    with pytest.raises(ConfigError, match="bare:// backend is declared as 'engram_test_plugin': it must be 'module:Class'"):
        registry.store_class("bare://")


def test_unknown_scheme_lists_every_known_one():
    registry.register_backend("other", OtherStore)
    message = _unknown_scheme_message()
    assert "unknown database URL scheme 'nosuch'" in message
    for scheme in ("sqlite", "memory", "postgresql", "redis", "json", "other"):
        assert f"{scheme}://" in message


def _unknown_scheme_message() -> str:
    with pytest.raises(ConfigError) as info:
        registry.store_class("nosuch://")
    return str(info.value)
