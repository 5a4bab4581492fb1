"""The one table of record kinds (``engram.kinds``) drives export, import, copy, the JSON
backend's files and the counts; a kind in the table that any of them misses fails here.

Also: export files and JSON store directories written before the table existed
(``tests/fixtures``, made by the code of the time) still import and load, and
writing them again gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import engram
from engram import kinds, transfer
from engram._transfer_vectors import VECTORS_OF
from engram.copy import KINDS as COPY_KINDS
from engram.blobs.store import BlobRecords
from engram.copy import copy_store
from engram.models import Stats
from engram.stores.base import Counts, Store
from engram.stores.jsonfiles import store as jsonfiles

FIXTURES = Path(__file__).parent / "fixtures"
EXPORT = FIXTURES / "export_v1_every_kind.jsonl"


def opened(url: str) -> engram.Memory:
    return engram.Memory(settings=engram.load_settings(database_url=url, embedder="none"))


# -- the table and what derives from it ----------------------------------------------------


def test_the_table_names_store_methods_and_count_fields_that_exist():
    counts = {f.name for f in dataclasses.fields(Counts)}
    for kind in kinds.KINDS:
        holder = Store if kind.layer == kinds.DATABASE_LAYER else BlobRecords
        for method in (kind.iterate, kind.put, kind.get):
            assert method is None or callable(getattr(holder, method, None)), (kind.name, method)
        assert set(kind.counts) <= counts, kind.name
        assert set(kind.counts) <= set(Stats.model_fields), kind.name
        assert set(kind.id_fields) | set(kind.order) <= set(_fields(kind.model)), kind.name
        if kind.carrier is None:
            assert issubclass(kind.model, BaseModel), kind.name
        else:
            assert kinds.BY_NAME[kind.carrier].carrier is None, kind.name
    assert len({k.name for k in kinds.KINDS}) == len({k.file for k in kinds.KINDS}) == len(kinds.KINDS)


def _fields(model: type[Any]) -> list[str]:
    if issubclass(model, BaseModel):
        return list(model.model_fields)
    return [f.name for f in dataclasses.fields(model)]


def test_export_import_copy_json_and_stats_take_their_kinds_from_the_table():
    lines = [k.name for k in kinds.LINE_KINDS]
    assert list(transfer.KINDS) == lines
    assert [k.name for k in COPY_KINDS] == lines
    assert set(VECTORS_OF) == {k.carrier for k in kinds.KINDS if k.carrier}
    assert set(jsonfiles.FILES) == {k.file for k in kinds.STORE_KINDS}
    assert set(jsonfiles.KINDS) == {k.file for k in kinds.LINE_KINDS if k in kinds.STORE_KINDS}
    counted = {field for k in kinds.COUNTED for field in k.counts}
    with opened("memory://") as m:
        stats = m.stats().model_dump()
    assert counted <= set(stats)


# -- every kind survives export -> import and copy --------------------------------------------


def _session(m: engram.Memory) -> str:
    return m.session_start({"user": "u1"}).id


# kind -> make one record of it in a store, return its identity (as the kind's ``identity`` gives it).
MAKERS: dict[str, Callable[[engram.Memory], Any]] = {
    "session": _session,
    "task": lambda m: m.task_create("researcher", {"q": 1}, session_id=_session(m)).id,
    "entry": lambda m: (m.store("k", "an entry", namespace="ns", embed=False).namespace, "k"),
    "blob": lambda m: m.blobs.put(b"\x89PNG bytes of a picture", name="p.png").id,
    "message": lambda m: m.add_message(_session(m), "user", "hello", embed=False).id,
    "summary": lambda m: m.summary_save(
        (s := _session(m)), "a summary", message_count=1, last_seq=m.add_message(s, "user", "hi", embed=False).seq
    ).session_id,
    "profile": lambda m: m.profile_save("u1", {"city": {"value": "Oslo", "source_message_ids": []}}).user_id,
    "checkpoint": lambda m: m.checkpoint_save(_session(m), {"step": 1}).id,
    "run": lambda m: m.run_start("run-session", run_id="run-1").id,
    "entry_vector": lambda m: (m.store("v", "a vector", namespace="ns", embedding=[1.0, 0.0, 0.0]).namespace, "v"),
    "message_vector": lambda m: m.add_message(_session(m), "user", "with a vector", embedding=[0.0, 1.0, 0.0]).id,
}


def test_every_kind_in_the_table_has_a_maker_here():
    assert set(MAKERS) == set(kinds.BY_NAME), "a new kind needs a maker above, so its round trips are tested"


def _held(m: engram.Memory, kind: kinds.RecordKind, ident: Any) -> bool:
    """Whether ``m`` holds the record ``ident`` of ``kind``, asked through the table's own methods."""
    lookup = getattr(kind.holder(m), kind.iterate)
    if kind.carrier is not None:
        return ident in lookup([ident])
    return any(kind.identity(record) == ident for record in lookup())


def _export_import(src: engram.Memory, dst: engram.Memory, tmp_path: Path) -> None:
    src.export(tmp_path / "dump.jsonl")
    dst.import_(tmp_path / "dump.jsonl")


def _copy(src: engram.Memory, dst: engram.Memory, tmp_path: Path) -> None:
    copy_store(src, dst)


@pytest.mark.parametrize("route", [_export_import, _copy], ids=["export-import", "copy"])
@pytest.mark.parametrize("target", ["sqlite", "json"])
@pytest.mark.parametrize("kind", kinds.KINDS, ids=[k.name for k in kinds.KINDS])
def test_every_kind_arrives(kind, target, route, tmp_path, url_of):
    with opened("memory://") as src, opened(url_of(target, "dst")) as dst:
        ident = MAKERS[kind.name](src)
        assert _held(src, kind, ident)
        route(src, dst, tmp_path)
        assert _held(dst, kind, ident), f"{kind.name} did not arrive by {route.__name__} into {target}"


# -- files written before the table ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite", "json"])
def test_an_old_export_imports_and_exports_again_byte_for_byte(backend, tmp_path, url_of):
    with opened(url_of(backend, "store")) as m:
        counts = m.import_(EXPORT)
        assert counts == {"session": 3, "task": 1, "entry": 4, "message": 4, "summary": 1, "profile": 1,
                          "checkpoint": 3, "run": 2}  # fmt: skip
        m.export(tmp_path / "again.jsonl")
    old, new = EXPORT.read_text().splitlines(), (tmp_path / "again.jsonl").read_text().splitlines()
    assert new[1:] == old[1:]
    assert new[0].split('"embedding_model"')[1] == old[0].split('"embedding_model"')[1]


def test_an_old_json_store_loads_and_writes_its_files_again_byte_for_byte(tmp_path):
    directory = tmp_path / "store"
    shutil.copytree(FIXTURES / "json_store_v1", directory)
    store = jsonfiles.JsonStore(directory)
    with opened(f"json:///{directory}") as m:
        stats = m.stats()
    assert (stats.entries, stats.sessions, stats.tasks, stats.messages, stats.summaries, stats.profiles,
            stats.checkpoints, stats.runs, stats.vectors) == (4, 3, 1, 4, 1, 1, 3, 2, 3)  # fmt: skip
    for file in jsonfiles.FILES:
        with store._writing(file):
            pass
        assert (directory / f"{file}.json").read_bytes() == (FIXTURES / "json_store_v1" / f"{file}.json").read_bytes()
    store.close()
