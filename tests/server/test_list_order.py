"""`GET /api/v1/memories?order=...` and `engram list --order ...`: newest or oldest updated first."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

import engram
from engram.cli import cli

from .conftest import World

API = "/api/v1"


def test_rest_lists_oldest_first_on_request(world: World) -> None:
    c, h = world.client, world.headers("member_b")
    for key in ("first", "second", "third"):
        assert c.post(f"{API}/memories", headers=h, json={"key": key, "content": "x", "namespace": "ordered"}).status_code == 201
        time.sleep(0.002)

    def listed(**params: object) -> list[str]:
        return [e["key"] for e in c.get(f"{API}/memories", headers=h, params={"namespace": "ordered", **params}).json()]

    assert listed() == ["third", "second", "first"]
    assert listed(order="updated_desc") == ["third", "second", "first"]
    assert listed(order="updated_asc") == ["first", "second", "third"]
    assert listed(order="updated_asc", limit=1, offset=1) == ["second"]
    bad = c.get(f"{API}/memories", headers=h, params={"order": "oldest"})
    assert bad.status_code == 422 and "updated_asc" in bad.text and "updated_desc" in bad.text


def test_cli_list_order(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with engram.Memory(url) as memory:
        for key in ("a", "b", "c"):
            memory.store(key, "x")
            time.sleep(0.002)

    def keys(*args: str) -> list[str]:
        result = CliRunner().invoke(cli, ["--db", url, "list", "--json", *args], env={"ENGRAM_EMBEDDER": "none"})
        assert result.exit_code == 0, result.output
        return [e["key"] for e in json.loads(result.output)]

    assert keys() == ["c", "b", "a"]
    assert keys("--order", "updated_asc") == ["a", "b", "c"]
    assert keys("--order", "updated_asc", "--limit", "2") == ["a", "b"]
    bad = CliRunner().invoke(cli, ["--db", url, "list", "--order", "sideways"], env={"ENGRAM_EMBEDDER": "none"})
    assert bad.exit_code == 2 and "updated_asc" in bad.output
