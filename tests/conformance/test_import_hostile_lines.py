"""An import refuses, naming the line, what ``store()`` and ``add_message()`` refuse, and
changes nothing: an export is a file anyone can write. Before, each of these reached
the store (a 3 MB content past ``max_content_bytes``, a 100,000-character context
no store call keeps) or failed untyped (UnicodeEncodeError, RecursionError)."""

from __future__ import annotations

import json

import pytest

import engram

from tests.conformance.test_import_all_or_nothing import HEADER, before, entry_line, session_line, snapshot


def _entry(key: str, **fields: object) -> str:
    line = json.loads(entry_line(key))
    line["data"].update(fields)
    return json.dumps(line)


def _write(tmp_path, bad: str):
    path = tmp_path / "hostile.jsonl"
    lines = [HEADER, session_line(1), entry_line("good"), bad]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CASES = {
    "content over max_content_bytes": (_entry("big", content="x" * 70_000), engram.ContentTooLarge, "max_content_bytes"),
    "context longer than a store keeps": (_entry("ctx", context="y" * 601), engram.InvalidInput, "at most 600"),
    "a lone surrogate in content": (entry_line("s").replace("content of s", "bad \\ud800 text"), engram.InvalidInput,
                                    "unpaired surrogate"),  # fmt: skip
    "a lone surrogate in context": (_entry("c", context="ok").replace('"ok"', '"\\udfff"'), engram.InvalidInput,
                                    "unpaired surrogate"),  # fmt: skip
    "a lone surrogate in a metadata key": (_entry("m", metadata={"k": 1}).replace('"k"', '"\\uD800"'),
                                           engram.InvalidInput, "unpaired surrogate"),  # fmt: skip
    "metadata nested past the limit": (_entry("d", metadata={"a": 1}).replace(
        '"a": 1', '"a": ' + "[" * 150 + "]" * 150), engram.InvalidInput, "deeper than 100"),  # fmt: skip
    "nesting past what JSON readers follow": (_entry("r", metadata={"a": 1}).replace(
        '"a": 1', '"a": ' + "[" * 100_000 + "]" * 100_000), engram.InvalidInput, "nest"),  # fmt: skip
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_line_is_refused_naming_it_and_changes_nothing(memory_factory, tmp_path, case):
    memory = memory_factory(max_content_bytes=65_536)
    bad, error, words = CASES[case]
    was = before(memory)
    with pytest.raises(error, match="line 4") as caught:
        memory.import_(_write(tmp_path, bad))
    assert words in str(caught.value)
    assert snapshot(memory) == was
    assert memory.get("good") is None


def test_an_emoji_written_as_a_surrogate_pair_imports(memory, tmp_path):
    path = _write(tmp_path, entry_line("e").replace("content of e", "smile \\ud83d\\ude00"))
    memory.import_(path)
    assert memory.get("e").content == "smile \U0001f600"
