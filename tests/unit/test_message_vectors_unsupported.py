"""A backend without MESSAGE_VECTOR: messages still work, search by meaning says why it cannot."""

from __future__ import annotations

import pytest

import engram
from engram.stores.base import MESSAGE_VECTOR
from engram.stores.registry import store_class


@pytest.fixture
def memory(tmp_path):
    url = f"json:///{tmp_path / 'store'}"
    if MESSAGE_VECTOR in store_class(url).capabilities:
        pytest.skip("the json backend searches messages by meaning now; pick another backend without it")
    m = engram.Memory(settings=engram.load_settings(database_url=url))
    yield m
    m.close()


def test_search_by_meaning_is_unsupported_and_fts_still_works(memory) -> None:
    s = memory.session_start().id
    memory.add_message(s, "user", "hello there")
    with pytest.raises(engram.Unsupported, match="message_vector"):
        memory.add_message(s, "user", "with a vector", embedding=[1.0, 0.0])
    with pytest.raises(engram.Unsupported, match="message_vector"):
        memory.search_messages("hello", mode="vector", vector=[1.0, 0.0])
    with pytest.raises(engram.Unsupported, match="message_vector"):
        memory.search_messages("hello", mode="hybrid", vector=[1.0, 0.0])
    result = memory.search_messages("hello", vector=[1.0, 0.0])  # auto: fts here
    assert [h.match_type for h in result.results] == ["fts"]
    assert [m.content for m in memory.history(s)] == ["hello there"]  # nothing half-stored
