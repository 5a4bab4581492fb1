"""The public surface: ``engram.__all__`` and the signatures that are part of the contract."""

from __future__ import annotations

import __future__
import inspect
import types

import engram


def test_all_matches_what_is_exported():
    public = {
        name
        for name, value in vars(engram).items()
        if not name.startswith("_") and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert set(engram.__all__) - {"__version__"} == public
    assert len(engram.__all__) == len(set(engram.__all__))
    for name in engram.__all__:
        assert hasattr(engram, name), name


def test_the_documented_names_are_exported():
    required = {
        "Memory", "AsyncMemory", "open", "Entry", "SearchHit", "SearchResult", "Session", "Task",
        "EngramError", "InvalidInput", "QuerySyntaxError", "ContentTooLarge", "ConfigError",
        "NotFound", "Conflict", "MissingDependency", "BackendError", "Settings", "load_settings",
    }  # fmt: skip
    assert required <= set(engram.__all__)


def test_version():
    assert isinstance(engram.__version__, str)
    assert engram.__version__.count(".") >= 2


def test_open_returns_a_memory():
    with engram.open("memory://") as memory:
        assert isinstance(memory, engram.Memory)


def params(func):
    return {
        name: (p.kind, p.default)
        for name, p in inspect.signature(func).parameters.items()
        if name != "self"
    }


K = inspect.Parameter.KEYWORD_ONLY
P = inspect.Parameter.POSITIONAL_OR_KEYWORD
EMPTY = inspect.Parameter.empty


def assert_contract(func, contract):
    """The documented parameters, in order, with their kinds and defaults; anything added
    later must be keyword-only with a default, so no documented call can break."""
    actual = params(func)
    assert {name: actual.get(name) for name in contract} == contract, func.__qualname__
    documented_order = [name for name in actual if name in contract]
    assert documented_order == list(contract), func.__qualname__
    for name, (kind, default) in actual.items():
        if name not in contract:
            assert kind == K and default is not EMPTY, f"{func.__qualname__}: new parameter {name} must be optional"


def test_entry_signatures():
    m = engram.Memory
    assert_contract(m.store, {
        "key": (P, EMPTY), "content": (P, EMPTY),
        "namespace": (K, "default"), "metadata": (K, None), "ttl": (K, None),
    })  # fmt: skip
    assert_contract(m.store_many, {"items": (P, EMPTY), "namespace": (K, "default")})
    assert_contract(m.get, {"key": (P, EMPTY), "namespace": (K, "default")})
    assert_contract(m.list, {
        "namespace": (K, None), "limit": (K, 20), "offset": (K, 0), "metadata": (K, None), "key_prefix": (K, None),
    })  # fmt: skip
    assert_contract(m.delete, {"key": (P, EMPTY), "namespace": (K, "default")})
    assert_contract(m.delete_namespace, {"namespace": (P, EMPTY)})
    assert_contract(m.namespaces, {})
    assert_contract(m.search, {
        "query": (P, EMPTY), "namespace": (K, None), "limit": (K, 10), "metadata": (K, None),
    })  # fmt: skip


def test_session_and_task_signatures():
    m = engram.Memory
    assert_contract(m.session_start, {"metadata": (P, None)})
    assert_contract(m.session_end, {"id": (P, EMPTY), "status": (P, "ended")})
    assert list(params(m.session_get))[:1] == ["id"]
    assert {"status", "ended_before", "limit", "offset"} <= set(params(m.sessions))
    assert_contract(m.task_create, {"agent_type": (P, EMPTY), "input": (P, EMPTY), "session_id": (K, None)})
    assert_contract(m.task_update, {"id": (P, EMPTY), "status": (P, EMPTY), "output": (P, None)})
    assert list(params(m.task_get))[:1] == ["id"]
    assert {"session_id", "status", "limit", "offset"} <= set(params(m.tasks))


def test_model_field_names():
    assert {
        "id", "key", "namespace", "content", "metadata", "created_at", "updated_at", "expires_at",
    } <= set(engram.Entry.model_fields)  # fmt: skip
    assert {"count", "results"} <= set(engram.SearchResult.model_fields)
    assert {"entry", "score", "match_type"} <= set(engram.SearchHit.model_fields)
    assert {"id", "status", "metadata", "started_at", "ended_at"} <= set(engram.Session.model_fields)
    assert {
        "id", "agent_type", "input", "output", "status", "session_id", "created_at", "updated_at", "completed_at",
    } <= set(engram.Task.model_fields)  # fmt: skip


def test_public_functions_have_docstrings():
    for cls in (engram.Memory, engram.AsyncMemory):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                assert member.__doc__, f"{cls.__name__}.{name} has no docstring"
