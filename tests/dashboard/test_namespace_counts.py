"""Namespace counts on the dashboard come from ``Memory.namespace_counts``: exact at any size."""

from __future__ import annotations

import re

from .conftest import csrf_of


def test_counts_are_exact_when_several_namespaces_pass_two_thousand(world, browser_for):
    alpha = world.tenancy.memory(world.tenancy.control.project("alpha").id)
    for namespace, n in (("big-a", 2_050), ("big-b", 2_010), ("small", 3)):
        alpha.store_many([{"key": f"k{i}", "content": "c"} for i in range(n)], namespace=namespace)
    client = browser_for("member_a")

    page = client.get("/namespaces").text
    shown = dict(re.findall(r'<a href="/entries\?ns=([^"]+)">[^<]*</a></td><td class="num">([^<]+)</td>', page))
    assert shown == {"big-a": "2,050", "big-b": "2,010", "small": "3", "secret-ns": "1"}

    overview = client.get("/").text
    linked = re.findall(r'href="/entries\?ns=([^"]+)"', overview)
    assert linked[:4] == ["big-a", "big-b", "small", "secret-ns"]  # largest first

    confirm = client.get("/namespace/delete?ns=big-b").text
    assert "and its 2,010 entries?" in confirm
    client.post("/namespace/delete", data={"csrf": csrf_of(confirm), "ns": "big-b"})
    assert "big-b" not in client.get("/namespaces").text


def test_oldest_first_pages_through_a_namespace_in_order(world, browser_for):
    alpha = world.tenancy.memory(world.tenancy.control.project("alpha").id)
    alpha.store_many([{"key": f"k{i:02d}", "content": "c"} for i in range(7)], namespace="ordered")
    alpha.store("k00", "updated", namespace="ordered")  # now the newest
    client = browser_for("member_a")
    seen = []
    for page in (1, 2, 3):
        html = client.get(f"/entries?ns=ordered&size=3&order=old&page={page}").text
        seen += re.findall(r">(k\d\d)</a>", html)
        assert ('rel="next"' in html) == (page < 3)
    assert seen == ["k01", "k02", "k03", "k04", "k05", "k06", "k00"]
