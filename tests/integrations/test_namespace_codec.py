"""The LangGraph namespace <-> engram namespace mapping is reversible and never merges two tuples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engram.errors import InvalidInput
from engram.integrations import _names

labels = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
namespaces = st.lists(labels, min_size=1, max_size=5).map(tuple)


@given(namespaces)
def test_decode_inverts_encode(namespace: tuple[str, ...]) -> None:
    assert _names.decode(_names.encode(namespace)) == namespace


@given(namespaces, namespaces)
def test_distinct_tuples_stay_distinct(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    if a != b:
        assert _names.encode(a) != _names.encode(b)


@pytest.mark.parametrize(
    ("namespace", "says"),
    [
        ((), "non-empty tuple"),
        (["a"], "non-empty tuple"),
        (("a", ""), "must not be empty"),
        (("a", 7), "must be a string"),
        (("tab\there",), "control character"),
        (("x" * 300,), "the limit is 256"),
    ],
)
def test_hostile_namespaces_are_refused_with_a_reason(namespace: object, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        _names.encode(namespace)
