"""``engram blob ...``: put, get, ls, stat, rm, cleanup, stats from the shell (real files, a real
SQLite store and a local blob directory; one real subprocess for standard input and output)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import engram
from engram.cli import cli

SRC = str(Path(engram.__file__).parents[1])


def _run(runner: CliRunner, url: str, *args: str, input: bytes | None = None):
    return runner.invoke(cli, ["--db", url, "blob", *args], input=input)


def test_put_get_ls_stat_rm_stats(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    data = os.urandom(300_000)
    (tmp_path / "photo.jpg").write_bytes(data)
    runner = CliRunner()
    put = _run(runner, url, "put", str(tmp_path / "photo.jpg"))
    assert put.exit_code == 0, put.output
    blob_id = put.output.strip()
    assert blob_id == hashlib.sha256(data).hexdigest()

    named = _run(runner, url, "put", str(tmp_path / "photo.jpg"), "--mime", "image/x-raw", "--name", "other", "--json")
    assert json.loads(named.output)["id"] == blob_id  # the same bytes: the same blob

    got = _run(runner, url, "get", blob_id, "-o", str(tmp_path / "out.jpg"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "out.jpg").read_bytes() == data

    listed = json.loads(_run(runner, url, "ls", "--json").output)
    assert [(b["id"], b["name"], b["mime_type"]) for b in listed] == [(blob_id, "photo.jpg", "image/jpeg")]
    assert "photo.jpg" in _run(runner, url, "ls").output
    stat = json.loads(_run(runner, url, "stat", f"blob:{blob_id}", "--json").output)
    assert stat["size"] == len(data) and stat["sha256"] == blob_id
    stats = json.loads(_run(runner, url, "stats", "--json").output)
    assert (stats["count"], stats["total_size"], stats["backend"]) == (1, len(data), "local")
    assert stats["location"] == str(tmp_path / "c-blobs")

    assert _run(runner, url, "cleanup", "--older-than-days", "0", "--dry-run").output.strip() == "would remove 1 blob"
    assert _run(runner, url, "rm", blob_id).exit_code == 0
    gone = _run(runner, url, "rm", blob_id)
    assert gone.exit_code == 1 and "no blob" in gone.output
    assert _run(runner, url, "ls").output.strip() == "no blobs"


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    bad = _run(runner, url, "get", "../../etc/passwd")
    assert bad.exit_code == 2 and "not a blob id" in bad.output and "Traceback" not in bad.output
    missing = _run(runner, url, "put", str(tmp_path / "nope.bin"))
    assert missing.exit_code == 2
    config = tmp_path / "small.yaml"
    config.write_text("storage:\n  blob_store:\n    maxBlobSize: 10\n")
    (tmp_path / "big.bin").write_bytes(b"x" * 11)
    big = runner.invoke(cli, ["--db", url, "--config", str(config), "blob", "put", str(tmp_path / "big.bin")])
    assert big.exit_code == 2 and "blob limit is 10 bytes" in big.output
    assert "blob" in runner.invoke(cli, ["--help"]).output
    for sub in ("put", "get", "ls", "stat", "rm", "cleanup", "stats"):
        assert runner.invoke(cli, ["blob", sub, "--help"]).exit_code == 0


def test_standard_input_in_and_standard_output_out_in_a_real_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    data = os.urandom(2_500_000)
    env = {**os.environ, "PYTHONPATH": SRC, "ENGRAM_EMBEDDER": "none"}
    put = subprocess.run(
        [sys.executable, "-m", "engram.cli", "--db", url, "blob", "put", "-", "--name", "piped.bin"],
        input=data, capture_output=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    blob_id = put.stdout.decode().strip()
    got = subprocess.run(
        [sys.executable, "-m", "engram.cli", "--db", url, "blob", "get", blob_id],
        capture_output=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    assert got.stdout == data
