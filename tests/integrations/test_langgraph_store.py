"""``EngramStore`` against LangGraph's documented ``BaseStore`` contract, on every engram backend.

No standard suite for LangGraph stores is published on PyPI, so these tests
follow the interface's docstrings (``langgraph.store.base``): put/get/delete,
search under a namespace prefix with filters (equality and ``$ne``/``$gt``/...),
query search, ``list_namespaces`` with prefix/suffix (``*`` wildcards),
``max_depth``, limit/offset, TTL in minutes with refresh on read, and the async
twins. Embeddings given in an ``index`` config are a small deterministic
bag-of-words function written here: it is the *user's* embedding function the
store must call, not a stand-in for a service.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("langgraph.store.base")

from langgraph.store.base import GetOp, PutOp, SearchOp

from engram import Memory
from engram.errors import InvalidInput
from engram.integrations import _names
from engram.integrations.langgraph import EngramSaver, EngramStore
from tests.conftest import BACKEND_FACTORIES

BACKENDS = ["sqlite", "postgresql", "redis", "memory", "json"]
VOCABULARY = ["pizza", "sushi", "cat", "dog", "python", "rust", "tea", "coffee"]


def bag_of_words(texts: list[str]) -> list[list[float]]:
    """The user's embedding function: one dimension per vocabulary word (plus one so no vector is zero)."""
    return [[float(t.lower().count(w)) for w in VOCABULARY] + [0.1] for t in texts]


@pytest.fixture(params=BACKENDS)
def memory(request: pytest.FixtureRequest, tmp_path: Path):
    with BACKEND_FACTORIES[request.param](tmp_path) as url, Memory(url) as m:
        yield m


@pytest.fixture
def store(memory: Memory) -> EngramStore:
    return EngramStore(memory)


def test_put_get_update_delete(store: EngramStore) -> None:
    store.put(("users", "u1"), "prefs", {"food": "pizza", "n": 1})
    first = store.get(("users", "u1"), "prefs")
    assert first is not None and first.value == {"food": "pizza", "n": 1}
    assert first.namespace == ("users", "u1") and first.key == "prefs"
    store.put(("users", "u1"), "prefs", {"food": "sushi"})
    second = store.get(("users", "u1"), "prefs")
    assert second.value == {"food": "sushi"}
    assert (
        second.created_at == first.created_at and second.updated_at >= first.updated_at
    )
    assert store.get(("users", "u2"), "prefs") is None
    store.delete(("users", "u1"), "prefs")
    assert store.get(("users", "u1"), "prefs") is None


def test_namespaces_map_reversibly_and_hostile_labels_are_refused(
    store: EngramStore,
) -> None:
    odd = ("a/b", "50%", "%2F", "ü ünïcode", "x" * 40)
    assert _names.decode(_names.encode(odd)) == odd
    assert _names.encode(("a/b",)) != _names.encode(("a", "b"))
    store.put(odd, "k", {"x": 1})
    assert store.get(odd, "k").value == {"x": 1}
    assert store.get(("a", "b", "50%", "%2F", "ü ünïcode", "x" * 40), "k") is None
    assert odd in store.list_namespaces()
    for bad in [("ok", "bad\x00label"), ("ok", ""), ("x" * 300,), ("ok", 3)]:
        with pytest.raises((InvalidInput, ValueError)) as caught:
            store.batch([PutOp(bad, "k", {"x": 1})])
        assert (
            "label" in str(caught.value)
            or "limit" in str(caught.value)
            or "string" in str(caught.value)
        )
    with pytest.raises(InvalidInput, match="reserved"):
        store.batch([PutOp(("langgraph", "x"), "k", {"x": 1})])
    assert odd in store.list_namespaces() and len(store.list_namespaces()) == 1


def test_search_prefix_filters_and_paging(store: EngramStore) -> None:
    store.put(
        ("docs", "a"),
        "1",
        {"kind": "report", "score": 3, "tags": ["x"], "meta": {"lang": "en"}},
    )
    store.put(
        ("docs", "a", "deep"),
        "2",
        {"kind": "report", "score": 7, "tags": ["y"], "meta": {"lang": "fr"}},
    )
    store.put(("docs", "b"), "3", {"kind": "memo", "score": 5})
    store.put(("other",), "4", {"kind": "report", "score": 9})

    def keys(namespace_prefix: tuple[str, ...], **kwargs) -> list[str]:
        return sorted(i.key for i in store.search(namespace_prefix, **kwargs))

    assert keys(namespace_prefix=("docs",)) == ["1", "2", "3"]
    assert keys(namespace_prefix=("docs", "a")) == ["1", "2"]
    assert keys(namespace_prefix=("docs", "a", "deep")) == ["2"]
    assert keys(namespace_prefix=("docs",), filter={"kind": "report"}) == ["1", "2"]
    assert keys(namespace_prefix=("docs",), filter={"score": {"$gt": 4}}) == ["2", "3"]
    assert keys(
        namespace_prefix=("docs",), filter={"score": {"$gte": 3, "$lt": 7}}
    ) == ["1", "3"]
    assert keys(namespace_prefix=("docs",), filter={"kind": {"$ne": "report"}}) == ["3"]
    assert keys(namespace_prefix=("docs",), filter={"meta": {"lang": "fr"}}) == ["2"]
    assert keys(namespace_prefix=("docs",), filter={"tags": ["x"]}) == ["1"]
    assert keys(namespace_prefix=()) == ["1", "2", "3", "4"]
    EngramSaver(store.memory).put(
        {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}},
        {"v": 1, "id": "1", "ts": "", "channel_values": {}, "channel_versions": {}, "versions_seen": {}},
        {}, {},
    )  # fmt: skip
    assert keys(namespace_prefix=()) == [
        "1",
        "2",
        "3",
        "4",
    ]  # neither the checkpointer's entries nor marks
    newest_first = [i.key for i in store.search(("docs",))]
    assert newest_first == ["3", "2", "1"]
    assert [i.key for i in store.search(("docs",), limit=1, offset=1)] == ["2"]
    with pytest.raises(InvalidInput, match="unknown operator"):
        store.search(("docs",), filter={"score": {"$regex": "x"}})


def test_query_search_finds_by_words_and_scores(store: EngramStore) -> None:
    store.put(("notes",), "a", {"text": "the user loves pizza with olives"})
    store.put(("notes",), "b", {"text": "the user drinks green tea"})
    store.put(("notes", "sub"), "c", {"text": "pizza every friday"})
    hits = store.search(("notes",), query="which pizza does the user like?")
    assert {h.key for h in hits} >= {"a", "c"}
    assert all(h.score is not None for h in hits)
    assert [h.key for h in store.search(("notes",), query="tea")] == ["b"]
    assert [h.key for h in store.search(("notes", "sub"), query="pizza")] == ["c"]
    assert (
        store.search(("notes",), query="pizza", filter={"text": "pizza every friday"})[
            0
        ].key
        == "c"
    )


def test_index_fields_and_user_embeddings(memory: Memory) -> None:
    if memory.embedder_note and "no vector search" in memory.embedder_note:
        pytest.skip(memory.embedder_note)
    store = EngramStore(
        memory,
        index={"dims": len(VOCABULARY) + 1, "embed": bag_of_words, "fields": ["title"]},
    )
    store.put(("kb",), "1", {"title": "all about cats", "body": "coffee coffee coffee"})
    store.put(("kb",), "2", {"title": "coffee brewing", "body": "cat cat cat"})
    store.put(("kb",), "3", {"title": "coffee beans"}, index=False)
    hits = store.search(("kb",), query="coffee")
    assert hits[0].key == "2"  # only the title is indexed
    assert "3" not in {h.key for h in hits}
    assert store.search(("kb",), query="cat")[0].key == "1"


def test_list_namespaces(store: EngramStore, memory: Memory) -> None:
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("x", "b", "c")]:
        store.put(ns, "k", {"v": 1})
    EngramSaver(memory).put(
        {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}},
        {"v": 1, "id": "1", "ts": "", "channel_values": {}, "channel_versions": {}, "versions_seen": {}},
        {}, {},
    )  # fmt: skip
    assert store.list_namespaces() == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "e"),
        ("x", "b", "c"),
    ]
    assert store.list_namespaces(prefix=("a", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
    ]
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("x", "b", "c")]
    assert store.list_namespaces(prefix=("*", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("x", "b", "c"),
    ]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "e"), ("x", "b")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "e")]


def test_batch_reads_before_writes_and_last_write_wins(store: EngramStore) -> None:
    results = store.batch(
        [
            PutOp(("b",), "k", {"n": 1}),
            GetOp(("b",), "k"),
            PutOp(("b",), "k", {"n": 2}),
            SearchOp(("b",)),
        ]
    )
    assert results == [None, None, None, []]
    assert store.get(("b",), "k").value == {"n": 2}


@pytest.mark.parametrize("memory", ["sqlite", "postgresql", "redis"], indirect=True)
def test_ttl_expires_and_reads_refresh_it(store: EngramStore) -> None:
    store.put(("t",), "kept", {"x": 1}, ttl=0.05)  # 3 seconds
    store.put(("t",), "dropped", {"x": 2}, ttl=0.05)
    time.sleep(2.0)
    assert store.get(("t",), "kept") is not None  # refreshes: 3 more seconds
    assert store.get(("t",), "dropped", refresh_ttl=False) is not None
    time.sleep(1.6)
    assert store.get(("t",), "dropped", refresh_ttl=False) is None
    assert store.get(("t",), "kept", refresh_ttl=False) is not None
    with pytest.raises(InvalidInput, match="minutes"):
        store.put(("t",), "bad", {"x": 1}, ttl=-1)


async def test_async_twins(store: EngramStore) -> None:
    await store.aput(("as",), "k", {"food": "pizza"})
    assert (await store.aget(("as",), "k")).value == {"food": "pizza"}
    assert [i.key for i in await store.asearch(("as",), query="pizza")] == ["k"]
    assert await store.alist_namespaces() == [("as",)]
    await store.adelete(("as",), "k")
    assert await store.aget(("as",), "k") is None


def test_from_url_context_manager(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lg.db'}"
    with EngramStore.from_url(url) as store:
        store.put(("u",), "k", {"x": 1})
    with EngramStore.from_url(url) as store:
        assert store.get(("u",), "k").value == {"x": 1}
    with Memory(url) as m:  # the same entries, seen through engram itself
        assert m.get("k", namespace="u").metadata["v"] == {"x": 1}
