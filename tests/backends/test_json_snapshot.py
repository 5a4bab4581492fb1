"""json://'s family methods are generated from the kinds table (stores/jsonfiles/snapshot.py):
each answers from the working copy, and a write rewrites exactly the files of the kinds it changes."""

from datetime import timedelta

from engram import kinds
from engram._time import utcnow
from engram.models import Entry, Profile, Session
from engram.stores.base import PrunePlan
from engram.stores.jsonfiles import JsonStore
from engram.stores.jsonfiles.snapshot import CONTRACT, FILES_WRITTEN
from engram.stores.memory import MemoryStore


def stamps(directory):
    return {p.name: p.stat().st_mtime_ns for p in directory.glob("*.json")}


def test_every_family_method_of_the_memory_store_is_answered_by_the_json_store():
    implemented = [name for name, default in CONTRACT.items() if getattr(MemoryStore, name) is not default]
    assert implemented  # the contracts and the memory store are where this test looks
    for name in implemented:
        assert getattr(JsonStore, name) is not CONTRACT[name], name


def test_the_files_written_are_those_of_the_kinds_the_table_says_a_method_changes():
    for kind in kinds.STORE_KINDS:
        for method in (kind.put, *kind.writes):
            assert kind.file in FILES_WRITTEN[method], (kind.name, method)
    assert FILES_WRITTEN["prune_conversation"][-1] == "sessions"  # dependents first, parents last
    assert FILES_WRITTEN["put_message_vectors"] == ("vectors", "message_vectors")  # the model's file first


def test_a_write_rewrites_its_kinds_files_and_a_read_or_a_dry_run_writes_nothing(tmp_path):
    store = JsonStore(tmp_path)
    now = utcnow()
    store.put_session(Session(id="s1", status="active", started_at=now))
    store.put_profile(Profile(user_id="u1", traits={}, updated_at=now))
    gone = now - timedelta(seconds=1)
    expired = Entry(id="e1", key="k", namespace="n", content="c", created_at=gone, updated_at=gone, expires_at=gone)
    store.put_entries([expired], now=now)
    before = stamps(tmp_path)
    assert set(before) == {"sessions.json", "profiles.json", "entries.json"}

    assert store.get_profile("u1") is not None and store.get_session("s1") is not None
    assert store.prune_entries(now=now, dry_run=True) == 1
    assert store.prune_conversation(PrunePlan(before=now + timedelta(days=1), dry_run=True)).sessions == 0
    assert stamps(tmp_path) == before

    assert store.delete_profile("u1") is True
    after = stamps(tmp_path)
    assert after["profiles.json"] != before["profiles.json"]
    assert {k: v for k, v in after.items() if k != "profiles.json"} == {
        k: v for k, v in before.items() if k != "profiles.json"
    }
    assert JsonStore(tmp_path).get_profile("u1") is None  # another process reading the files agrees
