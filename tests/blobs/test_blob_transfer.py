"""Export, import and copy carry blobs, bytes included, checked against their SHA-256."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from engram.copy import copy_store
from engram.errors import InvalidInput
from tests.blobs.conftest import open_memory


def _local(tmp_path, name):
    return open_memory(f"sqlite:///{tmp_path / (name + '.db')}", {"type": "local", "store_path": str(tmp_path / f"{name}-b")})


def test_export_import_copy_round_trip_keeps_every_blob_and_its_bytes(tmp_path, postgres_url):
    src = _local(tmp_path, "src")
    payloads = [os.urandom(n) for n in (0, 1, 4096, 3 * 1024 * 1024 + 5)]
    refs = [src.blobs.put(p, name=f"f{i}.bin", source="tool", metadata={"i": i}) for i, p in enumerate(payloads)]
    session = src.session_start().id
    src.add_message(session, "user", "a picture", attachments=[{"uri": refs[2].uri, "name": "f2.bin"}])
    counts = src.export(tmp_path / "dump.jsonl")
    assert counts["blob"] == 4
    line = next(json.loads(x) for x in (tmp_path / "dump.jsonl").read_text().splitlines()[1:] if '"kind": "blob"' in x)
    assert hashlib.sha256(base64.b64decode(line["data"]["content"])).hexdigest() == line["data"]["sha256"]

    imported = open_memory(f"sqlite:///{tmp_path / 'imp.db'}", {"type": "database"})
    assert imported.import_(tmp_path / "dump.jsonl")["blob"] == 4
    assert imported.import_(tmp_path / "dump.jsonl")["blob"] == 4  # again: nothing changes
    copied = open_memory(postgres_url, {"type": "database"})
    copy_store(imported, copied)
    for target in (imported, copied):
        assert target.blobs.stats().count == 4
        for ref, payload in zip(refs, payloads):
            assert target.blobs.stat(ref) == ref  # id, name, source, metadata, created_at
            assert target.blobs.get(ref) == payload
        message = target.history(session)[0]
        assert target.blobs.get(message.attachments[0].uri) == payloads[2]
    for m in (src, imported, copied):
        m.close()


@pytest.mark.parametrize("tamper", ["content", "sha256", "size", "not base64"])
def test_an_export_with_an_altered_blob_is_refused_and_changes_nothing(tamper, tmp_path):
    src = _local(tmp_path, "src")
    src.store("k", "an entry before the blob")
    src.blobs.put(b"the original bytes")
    src.export(tmp_path / "dump.jsonl")
    lines = (tmp_path / "dump.jsonl").read_text().splitlines()
    for i, text in enumerate(lines):
        if '"kind": "blob"' in text:
            obj = json.loads(text)
            if tamper == "content":
                obj["data"]["content"] = base64.b64encode(b"the altered! bytes").decode()
            elif tamper == "sha256":
                obj["data"]["sha256"] = "0" * 64
            elif tamper == "size":
                obj["data"]["size"] += 1
            else:
                obj["data"]["content"] = "***"
            lines[i] = json.dumps(obj)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    dst = _local(tmp_path, "dst")
    with pytest.raises(InvalidInput, match="blob field"):
        dst.import_(tmp_path / "bad.jsonl")
    assert dst.blobs.stats().count == 0 and dst.stats().entries == 0
    src.close()
    dst.close()


def test_an_import_over_the_blob_limit_is_refused(tmp_path):
    src = _local(tmp_path, "src")
    src.blobs.put(b"small")  # fits, but the file is refused whole: this one is not written either
    src.blobs.put(b"x" * 5000)
    src.export(tmp_path / "dump.jsonl")
    small = open_memory(f"sqlite:///{tmp_path / 's.db'}", {"type": "local", "store_path": str(tmp_path / "s"), "max_blob_size": 100})
    with pytest.raises(InvalidInput, match="blob limit"):
        small.import_(tmp_path / "dump.jsonl")
    assert small.blobs.stats().count == 0
    src.close()
    small.close()


def test_an_import_over_the_blob_limit_changes_nothing_else_either(tmp_path):
    src = _local(tmp_path, "src")
    src.store("k", "an entry before the blobs")
    src.blobs.put(b"x" * 5000)
    src.add_message(src.session_start().id, "user", "a message after the blobs")
    src.export(tmp_path / "dump.jsonl")
    small = open_memory(f"sqlite:///{tmp_path / 's.db'}", {"type": "local", "store_path": str(tmp_path / "s"), "max_blob_size": 100})
    with pytest.raises(InvalidInput, match="blob limit"):
        small.import_(tmp_path / "dump.jsonl")
    stats = small.stats()
    assert (small.blobs.stats().count, stats.entries, stats.sessions, stats.messages) == (0, 0, 0, 0)
    src.close()
    small.close()


def test_a_bad_line_after_the_blobs_leaves_the_blob_store_untouched(tmp_path):
    """The blob store (here a directory) is outside the database's transaction, and the
    import checks and writes the other lines in one pass: blobs wait until every line passed."""
    src = _local(tmp_path, "src")
    src.store("k", "an entry")
    src.blobs.put(b"the bytes")
    src.export(tmp_path / "dump.jsonl")
    lines = (tmp_path / "dump.jsonl").read_text().splitlines()
    assert '"kind": "blob"' in lines[-1]
    (tmp_path / "bad.jsonl").write_text("\n".join([*lines, '{"kind": "message", "data": {"id": 1}}']) + "\n")
    dst = _local(tmp_path, "dst")
    with pytest.raises(InvalidInput, match=f"line {len(lines) + 1}"):
        dst.import_(tmp_path / "bad.jsonl")
    assert dst.blobs.stats().count == 0 and dst.stats().entries == 0
    assert dst.import_(tmp_path / "dump.jsonl")["blob"] == 1
    assert dst.blobs.stats().count == 1 and dst.stats().entries == 1
    src.close()
    dst.close()
