"""The blob store's behaviour, the same on every blob backend (in-memory, local, database on
SQLite and on PostgreSQL): content addressing, streaming, reads, listing, limits, cleanup."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest

import engram
from engram.errors import ContentTooLarge, InvalidInput, NotFound, Unsupported
from engram.models import BlobRef
from tests.blobs.conftest import BLOB_BACKENDS


class Stream(io.RawIOBase):
    """A stream that yields ``total`` bytes, counts what was read, and has no length up front."""

    def __init__(self, total: int, byte: bytes = b"s") -> None:
        self.total, self.byte, self.given = total, byte, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        size = min(len(buffer), self.total - self.given)
        buffer[:size] = self.byte * size
        self.given += size
        return size


def test_put_returns_a_ref_named_by_the_hash_and_get_gives_the_bytes_back(blob_memory):
    m = blob_memory()
    data = b"\x00\x01binary\xff" * 1000
    ref = m.blobs.put(data, name="pic.png", metadata={"w": 3}, source="tool")
    digest = hashlib.sha256(data).hexdigest()
    assert (ref.id, ref.sha256, ref.uri, ref.size) == (digest, digest, f"blob:{digest}", len(data))
    assert (ref.mime_type, ref.name, ref.source, ref.metadata) == ("image/png", "pic.png", "tool", {"w": 3})
    assert m.blobs.get(ref) == m.blobs.get(ref.id) == m.blobs.get(ref.uri) == data
    with m.blobs.open(ref) as stream:
        assert stream.read() == data
    assert m.blobs.stat(ref.uri) == ref
    assert m.blobs.exists(ref) and not m.blobs.exists("0" * 64)


def test_the_same_bytes_are_stored_once(blob_memory):
    m = blob_memory()
    first = m.blobs.put(b"same bytes", name="a.txt")
    again = m.blobs.put(io.BytesIO(b"same bytes"), name="b.txt", mime_type="text/csv")
    assert again == first  # the first put's ref stands
    assert m.blobs.stats().count == 1 and m.blobs.stats().total_size == len(b"same bytes")


def test_a_path_a_stream_and_bytes_of_several_chunks(blob_memory, tmp_path):
    m = blob_memory()
    big = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB: several 1 MiB chunks
    (tmp_path / "big.bin").write_bytes(big)
    from_path = m.blobs.put(tmp_path / "big.bin")
    assert from_path.name == "big.bin" and from_path.size == len(big)
    assert m.blobs.put(str(tmp_path / "big.bin")).id == from_path.id
    assert m.blobs.put(io.BufferedReader(io.BytesIO(big))).id == from_path.id
    with m.blobs.open(from_path) as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == from_path.sha256
    assert m.blobs.get(from_path) == big


def test_mime_type_is_guessed_from_the_name_or_given(blob_memory):
    m = blob_memory()
    assert m.blobs.put(b"x", name="notes.txt").mime_type == "text/plain"
    assert m.blobs.put(b"y").mime_type == "application/octet-stream"
    assert m.blobs.put(b"z", mime_type="application/json; charset=utf-8").mime_type.startswith("application/json")
    with pytest.raises(InvalidInput, match="media type"):
        m.blobs.put(b"w", mime_type="not a type\r\nX-Evil: 1")
    with pytest.raises(InvalidInput, match="source"):
        m.blobs.put(b"w", source="somebody")
    with pytest.raises(InvalidInput, match="put\\(\\) takes"):
        m.blobs.put(12345)
    assert m.blobs.stats().count == 3


def test_missing_blobs_and_bad_ids(blob_memory):
    m = blob_memory()
    with pytest.raises(NotFound):
        m.blobs.get("a" * 64)
    with pytest.raises(NotFound):
        m.blobs.stat("blob:" + "a" * 64)
    assert m.blobs.delete("a" * 64) is False
    for bad in ("../x", "/etc/passwd", "a" * 63 + "\x00", "A" * 64, "x" * 10_000, 5, None):
        with pytest.raises(InvalidInput, match="not a blob id"):
            m.blobs.get(bad)


def test_delete_removes_it(blob_memory):
    m = blob_memory()
    ref = m.blobs.put(b"to delete")
    assert m.blobs.delete(ref) is True
    assert not m.blobs.exists(ref) and m.blobs.list() == [] and m.blobs.stats().count == 0
    assert m.blobs.delete(ref) is False


def test_list_pages_newest_first_and_filters_by_source_and_age(blob_memory):
    m = blob_memory()
    refs = [m.blobs.put(f"blob {i}".encode(), source="tool" if i % 2 else "user") for i in range(5)]
    listed = m.blobs.list()
    assert [r.id for r in listed] == [r.id for r in reversed(refs)]
    assert [r.id for r in m.blobs.list(limit=2, offset=1)] == [refs[3].id, refs[2].id]
    assert {r.id for r in m.blobs.list(source="tool")} == {refs[1].id, refs[3].id}
    assert m.blobs.list(older_than=refs[0].created_at) == []
    assert m.blobs.list(older_than=timedelta(days=1)) == []
    assert len(m.blobs.list(older_than=timedelta(seconds=-60))) == 5
    with pytest.raises(InvalidInput):
        m.blobs.list(limit=0)


def test_path_where_the_backend_has_files(blob_memory, blob_backend):
    m = blob_memory()
    ref = m.blobs.put(b"on disk")
    if blob_backend == "local":
        assert m.blobs.path(ref).read_bytes() == b"on disk"
    else:
        with pytest.raises(Unsupported):
            m.blobs.path(ref)


def test_over_the_blob_limit_nothing_is_written(blob_memory):
    m = blob_memory(max_blob_size=1000)
    with pytest.raises(ContentTooLarge, match="1000 bytes"):
        m.blobs.put(b"x" * 1001)
    stream = Stream(50_000_000)
    with pytest.raises(ContentTooLarge, match="1000 bytes"):
        m.blobs.put(stream)
    assert stream.given <= 2 * 1024 * 1024  # stopped reading past the limit, never read it all
    assert m.blobs.stats().count == 0 and m.blobs.list() == []
    assert m.blobs.put(b"x" * 1000).size == 1000


def test_over_the_total_limit_nothing_is_written(blob_memory):
    m = blob_memory(max_total_size=2500)
    m.blobs.put(b"a" * 1000)
    m.blobs.put(b"b" * 1000)
    with pytest.raises(ContentTooLarge, match="total blob limit of 2500 bytes"):
        m.blobs.put(b"c" * 1000)
    assert m.blobs.stats().total_size == 2000
    assert m.blobs.put(b"a" * 1000).size == 1000  # stored already: takes no more room


def test_cleanup_removes_old_blobs_no_message_attaches(blob_memory, blob_backend):
    m = blob_memory(cleanup_after_days=30)
    kept, attached, fresh = (m.blobs.put(f"{n}".encode()) for n in ("kept", "attached", "fresh"))
    session = m.session_start().id
    m.add_message(session, "user", "see attached", attachments=[{"uri": attached.uri}])
    assert m.blobs.cleanup() == 0  # nothing is 30 days old
    assert m.blobs.cleanup(older_than_days=0, dry_run=True) == 2
    assert m.blobs.exists(kept)
    assert m.blobs.cleanup(older_than_days=0) == 2
    assert not m.blobs.exists(kept) and not m.blobs.exists(fresh)
    assert m.blobs.exists(attached)
    m.delete_history(session)
    assert m.blobs.cleanup(older_than_days=0) == 1  # its last message went
    assert not m.blobs.exists(attached)


def test_prune_applies_cleanup_after_days(blob_memory):
    m = blob_memory(cleanup_after_days=0.000001)
    m.blobs.put(b"old soon")
    import time

    time.sleep(0.2)
    report = m.prune(dry_run=True)
    assert report.blobs == 1 and m.blobs.stats().count == 1
    assert m.prune().blobs == 1 and m.blobs.stats().count == 0


def test_stats_say_count_size_backend_and_where(blob_memory, blob_backend):
    m = blob_memory()
    m.blobs.put(b"12345")
    m.blobs.put(b"678")
    stats = m.blobs.stats()
    assert (stats.count, stats.total_size, stats.backend) == (2, 8, BLOB_BACKENDS[blob_backend])
    assert stats.location


def test_projects_never_see_each_others_blobs(blob_memory):
    a, b = blob_memory(project="alpha"), blob_memory(project="beta")
    ref = a.blobs.put(b"alpha's file")
    assert not b.blobs.exists(ref) and b.blobs.list() == [] and b.blobs.stats().count == 0
    with pytest.raises(NotFound):
        b.blobs.get(ref)
    assert b.blobs.delete(ref) is False and a.blobs.exists(ref)
    assert b.blobs.put(b"alpha's file").id == ref.id  # the same bytes, stored for beta too
    assert b.blobs.delete(ref) and a.blobs.get(ref) == b"alpha's file"


def test_a_project_name_that_is_a_path_is_refused(tmp_path):
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(InvalidInput, match="blob project"):
            engram.Memory("memory://", project=bad)


async def test_async_blobs_behave_the_same(blob_backend, tmp_path, request):
    if blob_backend != "local":
        pytest.skip("one backend is enough: AsyncBlobs runs the same BlobStore methods on a pool")
    settings = engram.load_settings(
        database_url=f"sqlite:///{tmp_path / 'a.db'}", embedder="none", storage={"blob_store": {"store_path": str(tmp_path / "b")}}
    )
    async with engram.AsyncMemory(settings=settings) as m:
        ref = await m.blobs.put(b"async bytes", name="a.bin")
        assert isinstance(ref, BlobRef) and await m.blobs.get(ref) == b"async bytes"
        assert await m.blobs.exists(ref.uri) and (await m.blobs.stat(ref)).size == 11
        assert [r.id for r in await m.blobs.list()] == [ref.id]
        assert (await m.blobs.stats()).count == 1
        assert (await m.blobs.path(ref)).read_bytes() == b"async bytes"
        assert await m.blobs.cleanup(older_than_days=0) == 1
        assert await m.blobs.delete(ref) is False
