"""Entry lines of an import, on every backend: timestamps, upserts, repeated keys.

Entry lines in the export's own form (UTC, "Z" or "+00:00") are kept as text on
the way in; every other form takes the full model and is normalized. Either
way every backend stores the same instant. Imported rows follow the upsert
rules of ``put_entries``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import engram
from engram.errors import InvalidInput

HEADER = json.dumps({"format": "engram", "version": 1})
CREATED = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)

# (text in the file, the instant it names)
FORMS = [
    ("2026-01-02T03:04:05.123456Z", CREATED),
    ("2026-01-02T03:04:05.123456+00:00", CREATED),
    ("2026-01-02T05:04:05.123456+02:00", CREATED),
    ("2026-01-01T22:04:05.123456-05:00", CREATED),
    ("2026-01-02T03:04:05.123Z", CREATED.replace(microsecond=123000)),
    ("2026-01-02T03:04:05Z", CREATED.replace(microsecond=0)),
    ("2026-01-02T03:04:05+00:00", CREATED.replace(microsecond=0)),
    ("2026-01-02T03:04:05.123456", CREATED),  # no offset: UTC, as to_iso reads it
]


def line(key: str, created: str, expires: str | None = None) -> str:
    data = {"id": f"id-{key}", "key": key, "namespace": "ts", "content": f"content of {key}", "metadata": {"k": key},
            "created_at": created, "updated_at": created, "expires_at": expires}  # fmt: skip
    if key.endswith("3"):
        data["context"] = f"what came before {key}"
    return json.dumps({"kind": "entry", "data": data})


def test_every_timestamp_form_is_the_same_instant(memory: engram.Memory, tmp_path):
    expires = "2126-01-02T04:04:05.5+01:00"  # far future, another form
    path = tmp_path / "forms.jsonl"
    lines = [line(f"k{i}", text, expires if i % 2 else None) for i, (text, _) in enumerate(FORMS)]
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")

    assert memory.import_(path)["entry"] == len(FORMS)
    for i, (_, instant) in enumerate(FORMS):
        entry = memory.get(f"k{i}", namespace="ts")
        assert entry is not None
        assert entry.created_at == instant and entry.updated_at == instant
        assert entry.created_at.utcoffset() == timedelta(0)
        assert entry.expires_at == (datetime(2126, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc) if i % 2 else None)
        assert entry.metadata == {"k": f"k{i}"}
        assert entry.context == (f"what came before k{i}" if i == 3 else None)


@pytest.mark.parametrize(
    "created",
    ["2026-02-30T00:00:00.000000Z", "2026-13-01T00:00:00.000000Z", "2026-01-01T25:00:00.000000Z", "yesterday"],
)
def test_an_impossible_time_in_the_export_form_is_refused(memory: engram.Memory, tmp_path, created):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([HEADER, line("ok", FORMS[0][0]), line("bad", created)]) + "\n", encoding="utf-8")

    with pytest.raises(InvalidInput, match=r"line 3: entry field created_at: "):
        memory.import_(path)
    assert memory.get("ok", namespace="ts") is None


def test_an_import_upserts_existing_keys_and_applies_repeated_ones_in_file_order(memory: engram.Memory, tmp_path):
    kept = memory.store("k0", "before the import", namespace="ts", metadata={"old": True})
    stamp = "2026-01-02T03:04:05.123456Z"
    lines = [line(f"k{i}", stamp) for i in range(40)]  # enough for a bulk batch
    repeated = json.loads(lines[5])
    repeated["data"].update(id="id-k5-again", content="k5, the second time", metadata={"n": 2})
    lines.append(json.dumps(repeated))
    path = tmp_path / "upserts.jsonl"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")

    assert memory.import_(path)["entry"] == 41
    k0 = memory.get("k0", namespace="ts")
    assert k0 is not None and k0.content == "content of k0" and k0.metadata == {"k": "k0"}
    assert (k0.id, k0.created_at) == (kept.id, kept.created_at)  # an upsert keeps id and created_at
    k5 = memory.get("k5", namespace="ts")
    assert k5 is not None and (k5.content, k5.metadata, k5.id) == ("k5, the second time", {"n": 2}, "id-k5")
    assert len(memory.list(namespace="ts", limit=100)) == 40
    assert [h.entry.key for h in memory.search("second", namespace="ts").results] == ["k5"]
