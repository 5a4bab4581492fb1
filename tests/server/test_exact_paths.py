"""Every entry that can be stored can be read and deleted over REST by its exact (namespace, key).

Names travel as one percent-encoded path segment each (``urllib.parse.quote(name,
safe='')``, with ``.``/``..`` as ``%2E``/``%2E%2E``, which clients would otherwise
resolve away); the server splits the raw path before decoding, so ``(a, b/k)`` and
``(a/b, k)`` are two different entries.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

MEMBER = "member_a"

# Printable text (no controls, no lone surrogates: those are refused on storing), biased
# towards what paths make hard: '/', '%', dots, spaces, '?', '#', '+', unicode.
_TRICKY = st.sampled_from(["/", "%", "%2F", "..", ".", " ", "?", "#", "+", "&", "=", ";", "é", "日本", "\U0001f600"])
_CHARS = st.characters(blacklist_categories=("Cs", "Cc"))
names = st.lists(st.one_of(_TRICKY, st.text(_CHARS, min_size=1, max_size=4)), min_size=1, max_size=5).map("".join)


def seg(name: str) -> str:
    """One path segment naming ``name`` exactly."""
    encoded = quote(name, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def entry_url(namespace: str, key: str) -> str:
    return f"/api/v1/memories/{seg(namespace)}/{seg(key)}"


def store(world, namespace: str, key: str, content: str) -> None:
    r = world.client.post("/api/v1/memories", headers=world.headers(MEMBER),
                          json={"namespace": namespace, "key": key, "content": content})
    assert r.status_code == 201, r.text


def get(world, namespace: str, key: str) -> httpx.Response:
    return world.client.get(entry_url(namespace, key), headers=world.headers(MEMBER))


def test_the_client_sends_encoded_segments_untouched():
    # The premise of the tests below: httpx neither decodes %2F nor drops %2E segments.
    assert httpx.URL("http://x" + entry_url("a/b", "..")).raw_path == b"/api/v1/memories/a%2Fb/%2E%2E"
    assert httpx.URL("http://x" + entry_url("50%", "?#")).raw_path == b"/api/v1/memories/50%25/%3F%23"


def test_an_encoded_slash_stays_inside_its_name(world):
    store(world, "a", "b/k", "a | b/k")
    store(world, "a/b", "k", "a/b | k")

    assert get(world, "a/b", "k").json()["content"] == "a/b | k"
    assert get(world, "a", "b/k").json()["content"] == "a | b/k"
    r = world.client.delete("/api/v1/memories/a%2Fb/k", headers=world.headers(MEMBER))
    assert r.status_code == 204
    assert get(world, "a/b", "k").status_code == 404
    assert get(world, "a", "b/k").json()["content"] == "a | b/k"  # the sibling survives


def test_a_raw_slash_after_the_namespace_still_belongs_to_the_key(world):
    store(world, "a", "b/k", "deep")
    r = world.client.get("/api/v1/memories/a/b/k", headers=world.headers(MEMBER))
    assert (r.status_code, r.json()["key"], r.json()["namespace"]) == (200, "b/k", "a")


def test_a_path_without_a_key_is_not_found(world):
    store(world, "a/b", "k", "x")
    r = world.client.get("/api/v1/memories/a%2Fb%2Fk", headers=world.headers(MEMBER))
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "NotFound"


def test_deleting_a_namespace_deletes_exactly_that_one(world):
    store(world, "a", "k", "in a")
    store(world, "a/b", "k", "in a/b")
    r = world.client.delete("/api/v1/namespaces/a%2Fb", headers=world.headers(MEMBER))
    assert (r.status_code, r.json()) == (200, {"deleted": 1})
    assert get(world, "a", "k").status_code == 200
    assert get(world, "a/b", "k").status_code == 404


def test_a_name_holding_a_line_break_is_refused_not_unrouted(world):
    r = world.client.delete(f"/api/v1/namespaces/{seg('a' + chr(10) + 'b')}", headers=world.headers(MEMBER))
    assert r.status_code in (400, 422) and r.json()["error"]["type"] == "InvalidInput", r.text


def test_openapi_documents_the_rule(world):
    spec = world.client.get("/openapi.json").json()
    params = spec["paths"]["/api/v1/memories/{namespace}/{key}"]["delete"]["parameters"]
    assert all("%2F" in p["description"] for p in params if p["in"] == "path")
    assert "/api/v1/namespaces/{namespace}" in spec["paths"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=names, b=names, k=names)
@example(a="a", b="b", k="k")
@example(a="..", b=".", k="%2F")
@example(a="50%", b="?x=1#y", k="é /")
@example(a="%0A", b="x%0A", k="%0D%0A")  # escapes that decode to line breaks must stay text
def test_any_stored_entry_is_read_and_deleted_by_its_exact_names(world, a, b, k):
    one, other = (a, f"{b}/{k}"), (f"{a}/{b}", k)  # siblings the decoded path would confuse
    store(world, *one, "one")
    store(world, *other, "other")
    try:
        for (namespace, key), content in ((one, "one"), (other, "other")):
            r = get(world, namespace, key)
            assert r.status_code == 200, r.text
            assert (r.json()["namespace"], r.json()["key"], r.json()["content"]) == (namespace, key, content)

        r = world.client.delete(entry_url(*one), headers=world.headers(MEMBER))
        assert r.status_code == 204, r.text
        assert get(world, *one).status_code == 404
        assert get(world, *other).json()["content"] == "other"

        store(world, *one, "one again")
        r = world.client.delete(f"/api/v1/namespaces/{seg(other[0])}", headers=world.headers(MEMBER))
        assert (r.status_code, r.json()) == (200, {"deleted": 1}), r.text
        assert get(world, *other).status_code == 404
        assert get(world, *one).json()["content"] == "one again"
    finally:
        for namespace in (one[0], other[0]):
            world.client.delete(f"/api/v1/namespaces/{seg(namespace)}", headers=world.headers(MEMBER))
