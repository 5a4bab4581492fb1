"""``engram cache stats|clear`` against a real Redis cache (127.0.0.1:6379 DB 13, fresh key prefix)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

import engram
from engram.cli import cli


def setup(tmp_path: Path, cache: dict) -> tuple[str, Path]:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    config = tmp_path / "engram.yaml"
    config.write_text(yaml.safe_dump({"storage": {"cache": cache}}))
    with engram.Memory(settings=engram.load_settings(config, database_url=db)) as memory:
        memory.cache.set_many({"user:1": 1, "user:2": 2, "other": 3})
    return db, config


def run(db: str, config: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", db, "--config", str(config), *args])


def test_stats_counts_the_stores_keys(tmp_path: Path, redis_cache_settings: dict) -> None:
    db, config = setup(tmp_path, redis_cache_settings)
    result = run(db, config, "cache", "stats", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["keys"] == 3 and report["shared"] is True and report["backend"].startswith("redis")
    assert "keys: 3" in run(db, config, "cache", "stats").output


def test_clear_by_prefix_then_everything(tmp_path: Path, redis_cache_settings: dict) -> None:
    db, config = setup(tmp_path, redis_cache_settings)
    result = run(db, config, "cache", "clear", "--prefix", "user:")
    assert result.exit_code == 0 and "removed 2 keys starting with 'user:'" in result.output
    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    with engram.Memory(settings=engram.load_settings(config, database_url=other_db)) as other:
        other.cache.set("kept", 1)
    assert json.loads(run(db, config, "cache", "clear", "--json").output)["removed"] == 1
    assert json.loads(run(other_db, config, "cache", "stats", "--json").output)["keys"] == 1  # another project's key


def test_a_bad_cache_section_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "engram.yaml"
    config.write_text("storage: {cache: {type: postgres}}\n")
    result = run("memory://", config, "cache", "stats")
    assert result.exit_code == 2 and "storage.cache.type" in result.output


def test_help_says_what_each_command_does() -> None:
    for args in (["cache", "--help"], ["cache", "stats", "--help"], ["cache", "clear", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "cache" in result.output.lower()
    assert "--prefix" in CliRunner().invoke(cli, ["cache", "clear", "--help"]).output
