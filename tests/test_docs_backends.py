"""docs/backends.md stays true: its capability table is generated from the declarations."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from engram.stores.redis.layout import Keys

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_backends_table", DOCS / "gen_backends_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_backends_table", module)
    spec.loader.exec_module(module)
    return module


def test_capability_table_matches_the_declarations():
    gen = _generator()
    document = (DOCS / "backends.md").read_text(encoding="utf-8")
    assert gen.render(document) == document, "docs/backends.md is stale: run python docs/gen_backends_table.py --write"


def test_every_backend_and_capability_is_in_the_table():
    gen = _generator()
    table = gen.table()
    for schemes, _ in gen.backends():
        assert schemes in table
    for name, _ in gen.capabilities():
        assert f"`{name}`" in table


def test_redis_key_layout_is_documented():
    document = (DOCS / "backends.md").read_text(encoding="utf-8")
    keys = Keys("P")
    documented = [
        keys.entry("{ns}", "{key}").replace("4:{ns}", "{n}:{ns}"),  # len("{ns}") == 4
        keys.ns_order("{ns}"),
        keys.ns_expiry("{ns}"),
        keys.ns_version("{ns}"),
        keys.order,
        keys.namespaces,
        keys.seq,
        keys.session("{id}"),
        keys.sessions,
        keys.sessions_by_status("{status}"),
        keys.task("{id}"),
        keys.tasks,
        keys.tasks_by_status("{status}"),
        keys.tasks_by_session("{session_id}"),
        keys.message("{id}"),
        keys.messages,
        keys.session_messages("{session_id}"),
        keys.messages_created,
        keys.messages_seq,
        keys.messages_removed,
        keys.messages_removals,
        keys.messages_removals_floor,
        keys.summary("{session_id}"),
        keys.summaries,
        keys.profile("{user_id}"),
        keys.profiles,
        keys.checkpoint("{id}"),
        keys.checkpoints,
        keys.session_checkpoints("{session_id}"),
    ]
    for key in documented:
        assert f"`{key}`" in document, key
