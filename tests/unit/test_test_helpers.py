"""The machinery of the suite itself: require_service and the requires() capability marker."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

_spec = importlib.util.spec_from_file_location("engram_root_conftest", Path(__file__).parents[1] / "conftest.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def listening_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_require_service_passes_when_the_port_answers(listening_port, monkeypatch):
    monkeypatch.setenv("CI", "true")
    helpers.require_service("Thing", "127.0.0.1", listening_port, "start the thing")


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_require_service_skips_locally(monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as info:
        helpers.require_service("Thing", "127.0.0.1", closed_port(), "start it with `thingd`")
    assert "Thing is not reachable at 127.0.0.1:" in str(info.value)
    assert "start it with `thingd`" in str(info.value)


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_require_service_fails_on_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as info:
        helpers.require_service("Thing", "127.0.0.1", closed_port(), "start it with `thingd`")
    assert "start it with `thingd`" in str(info.value)


def test_service_constants():
    assert helpers.POSTGRES[1:3] == ("127.0.0.1", 5432)
    assert helpers.REDIS[1:3] == ("127.0.0.1", 6379)


def fake_request(*marks):
    node = SimpleNamespace(iter_markers=lambda name: [m.mark for m in marks if m.mark.name == name])
    return SimpleNamespace(node=node)


def test_requires_skips_exactly_when_a_capability_is_missing():
    request = fake_request(pytest.mark.requires("fts", "vacuum"))
    helpers.skip_unless_capable(request, frozenset({"fts", "vacuum", "persistent"}), "full")
    with pytest.raises(pytest.skip.Exception, match="the small backend lacks capability vacuum"):
        helpers.skip_unless_capable(request, frozenset({"fts"}), "small")


def test_unmarked_tests_run_everywhere():
    helpers.skip_unless_capable(fake_request(), frozenset(), "bare")


def test_a_misspelt_capability_fails_instead_of_skipping():
    with pytest.raises(pytest.fail.Exception, match="unknown capability ftss"):
        helpers.skip_unless_capable(fake_request(pytest.mark.requires("ftss")), frozenset({"fts"}), "any")


def test_every_backend_factory_yields_a_url_of_a_registered_scheme(tmp_path):
    from engram.stores.registry import BACKENDS

    assert {"memory", "sqlite"} <= set(helpers.BACKEND_FACTORIES)
    for name in ("memory", "sqlite"):  # the ones that need no server
        with helpers.BACKEND_FACTORIES[name](tmp_path / name) as url:
            assert url.split("://")[0] in BACKENDS
