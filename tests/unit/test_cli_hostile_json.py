"""JSON options of the CLI (--metadata) give a typed error and exit 2, never a traceback (issue 9, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engram.cli import cli
from engram.validation import MAX_JSON_DEPTH


@pytest.mark.parametrize(
    "args, words",
    [
        (["list", "--metadata", '{"a":' * 5000 + "1" + "}" * 5000], ["--metadata", str(MAX_JSON_DEPTH)]),
        (["list", "--metadata", '{"n": 100000000000000000000000}'], ["'n'", "64-bit"]),
        (["search", "tea", "--metadata", '{"n": "\\ud800"}'], ["'n'", "surrogate"]),
        (["store", "k", "v", "--metadata", '{"a":' * 200 + "1" + "}" * 200], ["metadata", str(MAX_JSON_DEPTH)]),
        (["list", "--metadata", "{not json"], ["--metadata", "not valid JSON"]),
        (["task", "create", "planner", "[" * 5000 + "]" * 5000], ["task input", str(MAX_JSON_DEPTH)]),
    ],
)
def test_hostile_json_options_exit_2_with_the_limit(tmp_path: Path, args: list[str], words: list[str]) -> None:
    env = {"ENGRAM_EMBEDDER": "none", "ENGRAM_DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}"}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, RecursionError)
    for word in words:
        assert word in result.output, result.output
