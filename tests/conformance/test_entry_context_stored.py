"""An entry keeps the context it was embedded with, on every backend (issue 15).

No embedder here: the context is stored whether or not anything is embedded,
so ``engram reindex`` and an import can embed it later.
"""

from __future__ import annotations

import json

import engram
from engram.search.context import CONTEXT_CHARS

TURNS = [
    {"key": "ask", "content": "Carol: Did you adopt the puppy?"},
    {"key": "reply", "content": "Dan: Yes, last spring!"},
    {"key": "other", "content": "Eve: The budget review moved to Thursday.", "context": "Session of 8 May 2023"},
]


def test_the_context_is_stored_returned_and_replaced_like_the_content(memory: engram.Memory) -> None:
    stored = memory.store("k", "the content", context="  the title  ")
    assert stored.context == "the title"  # as embedded: stripped
    assert memory.get("k").context == "the title"
    assert [e.context for e in memory.list()] == ["the title"]
    # A later store of the key replaces the context with its own, or with none.
    assert memory.store("k", "the content", context="another title").context == "another title"
    assert memory.get("k").context == "another title"
    assert memory.store("k", "the content").context is None
    assert memory.get("k").context is None
    assert memory.get("k").content == "the content"


def test_store_many_stores_each_items_bounded_context(memory: engram.Memory) -> None:
    memory.store_many(TURNS, namespace="window", context_window=2)
    memory.store_many(TURNS, namespace="own")
    memory.store_many([{"key": "long", "content": "x", "context": "y" * (CONTEXT_CHARS + 50)}], namespace="own")
    got = {ns: {e.key: e.context for e in memory.list(namespace=ns)} for ns in ("window", "own")}
    assert got["window"] == {
        "ask": None,
        "reply": TURNS[0]["content"],
        "other": "Session of 8 May 2023\n" + TURNS[0]["content"] + "\n" + TURNS[1]["content"],
    }
    assert got["own"] == {"ask": None, "reply": None, "other": "Session of 8 May 2023", "long": "y" * CONTEXT_CHARS}
    assert {e.key: e.content for e in memory.list(namespace="window")} == {t["key"]: t["content"] for t in TURNS}


def test_a_context_with_unusual_characters_round_trips(memory: engram.Memory) -> None:
    context = 'a NUL \x00, a quote ", a newline\nand 🐈'
    memory.store("k", "v", context=context)
    assert memory.get("k").context == context
    many = [{"key": f"k{i}", "content": f"v{i}", "context": context} for i in range(40)]  # the bulk paths
    memory.store_many(many, namespace="bulk")
    assert {e.context for e in memory.list(namespace="bulk", limit=100)} == {context}


def test_export_and_import_carry_the_context(memory: engram.Memory, memory_factory, tmp_path) -> None:
    memory.store_many(TURNS, context_window=1)
    memory.store("plain", "no context here")
    path = tmp_path / "dump.jsonl"
    memory.export(path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    written = {r["data"]["key"]: r["data"] for r in lines if r["kind"] == "entry"}
    assert written["reply"]["context"] == TURNS[0]["content"]
    assert "context" not in written["plain"]  # written only when set: such a line reads in an older engram

    target = memory_factory()
    target.import_(path)
    for key in ("ask", "reply", "other", "plain"):
        assert target.get(key) == memory.get(key)
    assert target.get("other").context == "Session of 8 May 2023\n" + TURNS[1]["content"]


def test_an_export_written_before_contexts_imports_with_none(memory: engram.Memory, tmp_path) -> None:
    memory.store("k", "v", context="c")
    path = tmp_path / "dump.jsonl"
    memory.export(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    old = [lines[0]]
    for line in lines[1:]:
        record = json.loads(line)
        record["data"].pop("context", None)  # as engram wrote entries before issue 15
        old.append(json.dumps(record))
    path.write_text("\n".join(old) + "\n", encoding="utf-8")
    memory.import_(path)  # an upsert of the same key, without a context
    assert memory.get("k").context is None
    assert memory.get("k").content == "v"
