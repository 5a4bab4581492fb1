"""The fast reading of an export's entry lines agrees with the full Entry model.

``engram.transfer`` keeps an entry line in the export's own form as text
(``_entry_row``) and sends anything else through ``Entry``; this checks that
the shortcut accepts nothing the model refuses and reads what it accepts
exactly as the model would.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engram import validation as check
from engram.errors import InvalidInput
from engram.stores.contracts.entries import EntryRow
from engram.transfer import _entry_row, _EntryLine, _stamp

TEXT = st.text(max_size=12)
NAMES = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=12) | TEXT  # mostly valid
UTC_MOSTLY = [timezone.utc] * 3
ZONES = st.sampled_from([*UTC_MOSTLY, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)), None])
TIMES = st.builds(
    lambda dt, zone, micro: dt.replace(tzinfo=zone, microsecond=micro),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    ZONES,
    st.sampled_from([0, 1, 123456, 999999]),
)


def stamp_texts(dt: datetime) -> st.SearchStrategy[str]:
    forms = [dt.isoformat(), dt.isoformat(timespec="microseconds"), dt.isoformat(timespec="seconds")]
    if dt.tzinfo is timezone.utc:
        forms += [f.replace("+00:00", "Z") for f in forms]
    return st.sampled_from(forms)


JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
METADATA = st.dictionaries(TEXT, st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3), max_leaves=5))
ODD = st.sampled_from([None, 1, 1.5, True, [], {}, "", "x" * 300, "a\x01b", "2026-02-30T00:00:00.000000Z"])


@st.composite
def entry_lines(draw: st.DrawFn) -> str:
    """Entry lines as an export writes them, and now and then a field that is wrong or missing."""
    data: dict[str, object] = {
        "id": draw(TEXT), "key": draw(NAMES), "namespace": draw(NAMES), "content": draw(TEXT),
        "context": draw(st.none() | TEXT), "metadata": draw(METADATA),
        "created_at": draw(TIMES.flatmap(stamp_texts)), "updated_at": draw(TIMES.flatmap(stamp_texts)),
        "expires_at": draw(st.none() | TIMES.flatmap(stamp_texts)),
    }  # fmt: skip
    for field in draw(st.lists(st.sampled_from([*data, "extra"]), max_size=2) | st.just([])):
        if draw(st.booleans()):
            data[field] = draw(ODD)
        else:
            data.pop(field, None)
    return json.dumps({"kind": "entry", "data": data}, ensure_ascii=draw(st.booleans()))


def full_path(line: str) -> EntryRow | None:
    """What the Entry model makes of the line (None where it, or the name checks, refuse it)."""
    try:
        entry = _EntryLine.model_validate_json(line).data
        check.name("key", entry.key)
        check.name("namespace", entry.namespace)
    except (ValueError, InvalidInput):
        return None
    return EntryRow.of(entry)


@settings(max_examples=400, deadline=None)
@given(entry_lines())
def test_the_fast_path_reads_a_line_as_the_model_does(line):
    fast = _entry_row(line)
    assert fast is None or fast == full_path(line)


@given(TIMES.filter(lambda dt: dt.tzinfo is timezone.utc).flatmap(stamp_texts))
def test_a_utc_stamp_keeps_the_stores_text(text):
    from engram._time import to_iso

    assert _stamp(text) == to_iso(datetime.fromisoformat(text))


def test_an_export_line_takes_the_fast_path():
    line = json.dumps({"kind": "entry", "data": {
        "id": "i", "key": "k", "namespace": "n", "content": "c", "metadata": {"a": [1, {"b": None}]},
        "created_at": "2026-01-02T03:04:05.123456Z", "updated_at": "2026-01-02T03:04:06Z", "expires_at": None,
    }})  # fmt: skip
    assert _entry_row(line) == EntryRow(
        "i", "k", "n", "c", None, {"a": [1, {"b": None}]},
        "2026-01-02T03:04:05.123456+00:00", "2026-01-02T03:04:06.000000+00:00", None,
    )  # fmt: skip
    assert _entry_row(line) == full_path(line)


@pytest.mark.parametrize(
    "created",
    [
        "2026-01-02T03:04:05.123456Z\n",  # a newline inside the string
        "0000-01-02T03:04:05.123456Z",  # no year 0 in Python
        "2026-01-02T23:59:60.000000Z",  # a leap second
        "\u0662\u0660\u0662\u0666-01-02T03:04:05.123456Z",  # digits, but not ASCII ones
        "2026-02-30T00:00:00.000000Z",
        "2026-01-02T03:04:05.123456+01:00",  # another offset: normalized by the model
    ],
)
def test_anything_but_the_export_form_goes_to_the_model(created):
    line = json.dumps({"kind": "entry", "data": {
        "id": "i", "key": "k", "namespace": "n", "content": "c", "created_at": created, "updated_at": created,
    }})  # fmt: skip
    assert _entry_row(line) is None


def test_a_context_comes_with_its_entry():
    line = json.dumps({"kind": "entry", "data": {
        "id": "i", "key": "k", "namespace": "n", "content": "c", "context": "Tuesday, 2 pm",
        "created_at": "2026-01-02T03:04:05.123456Z", "updated_at": "2026-01-02T03:04:05.123456Z",
    }})  # fmt: skip
    row = _entry_row(line)
    assert row is not None and row.context == "Tuesday, 2 pm" and row == full_path(line)
    assert row.entry().context == "Tuesday, 2 pm"
