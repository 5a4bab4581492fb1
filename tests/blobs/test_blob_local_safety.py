"""The local blob store on a real directory: hostile ids never reach a file outside it, files and
directories are private, a writer killed with SIGKILL leaves nothing visible (and its temp file
goes at the next open), and 8 processes putting the same 20 files leave exactly 20 blobs.

Every process here is a real ``python`` process on the real file system and databases.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import engram
from engram.errors import ConfigError, InvalidInput
from tests.blobs.conftest import open_memory

SRC = str(Path(engram.__file__).parents[1])
HOSTILE_IDS = [
    "../canary.txt",
    "../../canary.txt",
    "blob:../../canary.txt",
    "/etc/passwd",
    str(Path("/tmp") / "canary.txt"),
    "a" * 63 + "\x00",
    "\x00" * 64,
    "a" * 10_000,
    "..",
    ".",
    "",
    "aa/" + "a" * 61,
    "A" * 64,
]


def _tree(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime) for p in sorted(root.rglob("*"))}


def test_hostile_ids_never_touch_a_file_outside_the_store(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("still here")
    store_dir = tmp_path / "blobs" / "store"
    store_dir.parent.mkdir()
    m = open_memory(f"sqlite:///{tmp_path / 'db.sqlite'}", {"type": "local", "store_path": str(store_dir)})
    ref = m.blobs.put(b"a real blob", name="../../canary.txt")  # a name is a label, never a path
    before = _tree(tmp_path)
    for hostile in HOSTILE_IDS:
        for call in (m.blobs.get, m.blobs.stat, m.blobs.exists, m.blobs.delete, m.blobs.open, m.blobs.path):
            with pytest.raises(InvalidInput, match="not a blob id"):
                call(hostile)
    assert _tree(tmp_path) == before
    assert canary.read_text() == "still here"
    assert m.blobs.get(ref) == b"a real blob" and m.blobs.path(ref).is_relative_to(store_dir)
    m.close()


def test_files_are_0600_and_directories_0700_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        m = open_memory(f"sqlite:///{tmp_path / 'db.sqlite'}", {"type": "local", "store_path": str(tmp_path / "b")})
        m.blobs.put(b"private")
        m.close()
    finally:
        os.umask(old)
    for path in (tmp_path / "b").rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


KILLED_WRITER = textwrap.dedent(
    """
    import io, sys, time
    sys.path.insert(0, {src!r})
    import engram
    settings = engram.load_settings(database_url={url!r}, embedder="none",
                                    storage={{"blob_store": {{"type": "local", "store_path": {store!r}}}}})
    memory = engram.Memory(settings=settings)

    class Slow(io.RawIOBase):
        sent = 0
        def readable(self): return True
        def readinto(self, buffer):
            if self.sent == 4 << 20:
                print("STAGING", flush=True)  # 4 MiB are in the temp file: kill me now
            if self.sent > 4 << 20:
                time.sleep(0.05)
            size = min(len(buffer), 1 << 20)
            buffer[:size] = b"k" * size
            self.sent += size
            return size

    memory.blobs.put(Slow())
    """
)


def test_a_writer_killed_mid_put_leaves_no_partial_blob_and_the_next_open_removes_its_temp(tmp_path):
    store = tmp_path / "blobs"
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    script = KILLED_WRITER.format(src=SRC, url=url, store=str(store))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "STAGING"
        temps = list(store.glob("default/.tmp/*.part"))
        assert len(temps) == 1 and temps[0].stat().st_size >= 4 << 20
        with open_memory(url, {"type": "local", "store_path": str(store)}) as live:
            assert temps[0].exists()  # its writer is alive: an open leaves it alone
            assert live.blobs.list() == []
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert temps[0].exists()
    with open_memory(url, {"type": "local", "store_path": str(store)}) as after:
        assert not temps[0].exists()  # the writer is gone: the next open removed its temp file
        assert after.blobs.list() == [] and after.blobs.stats().count == 0
        assert list(store.glob("default/??/*")) == []


CONCURRENT_PUTTER = textwrap.dedent(
    """
    import json, random, sys, time
    from pathlib import Path
    sys.path.insert(0, {src!r})
    import engram
    settings = engram.load_settings(database_url={url!r}, embedder="none", storage={{"blob_store": {blob_store!r}}})
    files = sorted(Path({files!r}).iterdir())
    random.Random({worker}).shuffle(files)
    with engram.Memory(settings=settings) as memory:
        while not Path({go!r}).exists():
            time.sleep(0.005)
        print(json.dumps({{f.name: memory.blobs.put(f).id for f in files}}), flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "database-sqlite", "database-postgres"])
def test_eight_processes_putting_the_same_twenty_files_leave_twenty_blobs(backend, tmp_path, request):
    files = tmp_path / "files"
    files.mkdir()
    for i in range(20):
        (files / f"f{i:02}.bin").write_bytes(os.urandom(1000 + i * 37_000))
    url = request.getfixturevalue("postgres_url") if backend == "database-postgres" else f"sqlite:///{tmp_path / 'db.sqlite'}"
    blob_store = {"type": "local", "store_path": str(tmp_path / "blobs")} if backend == "local" else {"type": "database"}
    open_memory(url, blob_store).close()  # the schema exists before the race on the blobs
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_PUTTER.format(
                src=SRC, url=url, blob_store=blob_store, files=str(files), worker=w, go=str(go))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(8)
    ]  # fmt: skip
    time.sleep(1.0)
    go.touch()
    answers = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        answers.append(json.loads(out))
    expected = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files.iterdir()}
    assert all(answer == expected for answer in answers)
    with open_memory(url, blob_store) as m:
        stored = m.blobs.list(limit=100)
        assert len(stored) == 20 and m.blobs.stats().count == 20
        assert {r.id for r in stored} == set(expected.values())
        for ref in stored:
            assert hashlib.sha256(m.blobs.get(ref)).hexdigest() == ref.id == ref.sha256
    if backend == "local":
        assert list((tmp_path / "blobs").glob("default/.tmp/*")) == []


def test_database_blobs_need_sqlite_or_postgres(tmp_path):
    (tmp_path / "j").mkdir()
    for url in (f"json:///{tmp_path / 'j'}", "memory://"):
        with pytest.raises(ConfigError, match="needs a sqlite or postgres database"):
            open_memory(url, {"type": "database"})
