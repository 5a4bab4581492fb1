"""What the pages show and change, through the same facade and control plane as the API."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone

from engram import Memory
from engram.server.dashboard import charts, counts, highlight
from engram.server.models import Transaction
from engram.stores.control_base import TransactionQuery
from server.conftest import CANARY, CANARY_USER

from .conftest import csrf_of

MAX_PAGE_BYTES = 200 * 1024


def api_store(world, who, **body):
    response = world.client.post("/api/v1/memories", json=body, headers=world.headers(who))
    assert response.status_code == 201, response.text
    return response.json()


def test_overview_shows_counts_storage_embedder_and_charts(world, browser_for):
    api_store(world, "member_a", key="k1", content="hello", namespace="notes")
    page = browser_for("admin_a").get("/")
    assert page.status_code == 200
    text = page.text
    for label in ("Entries", "Namespaces", "Sessions", "Tasks", "Messages", "Checkpoints", "Storage size", "Embedder",
                  "Vector index"):
        assert label in text
    assert text.count("<svg") == 2 and "Writes per day" in text and "Largest namespaces" in text
    assert re.search(r"<title>\d{4}-\d\d-\d\d: [1-9]\d*</title>", text), "today's writes are drawn"
    assert 'href="/entries?ns=secret-ns"' in text and 'href="/entries?ns=notes"' in text
    # a member has no log to draw from, as in the API
    assert "Writes per day come from the transaction log" in browser_for("member_a").get("/").text


def test_everything_listed_is_two_clicks_from_the_overview(world, browser_for):
    client = browser_for("server_admin")
    overview = client.get("/").text
    first = set(re.findall(r'href="(/[^"]*)"', overview))
    for section in ("/namespaces", "/search", "/sessions", "/tasks", "/variables", "/admin/keys", "/admin/log",
                    "/admin/projects", "/admin/users"):
        assert section in first, section


def test_entries_page_pages_and_sorts_by_update_time(world, browser_for):
    for i in range(5):
        api_store(world, "member_a", key=f"k{i}", content=f"entry {i}", namespace="paged", ttl=3600 if i == 0 else None)
    client = browser_for("member_a")
    newest = client.get("/entries?ns=paged&size=2").text
    assert newest.index(">k4<") < newest.index(">k3<") and ">k2<" not in newest and 'rel="next"' in newest
    oldest = client.get("/entries?ns=paged&size=2&order=old").text
    assert oldest.index(">k0<") < oldest.index(">k1<") and ">k2<" not in oldest
    last = client.get("/entries?ns=paged&size=2&order=old&page=3").text
    assert ">k4<" in last and 'rel="next"' not in last
    assert "never" in newest  # k4 has no expiry
    page0 = client.get("/entries?ns=paged&size=5&order=old").text
    row = page0[page0.index(">k0<"):page0.index(">k1<")]
    assert "never" not in row, "k0's expiry is shown"


def test_metadata_is_shown_as_a_table(world, browser_for):
    api_store(world, "member_a", key="m", content="c", namespace="meta", metadata={"topic": "food", "n": 3})
    page = browser_for("member_a").get("/entries?ns=meta").text
    assert '<th scope="row">topic</th><td>food</td>' in page and '<th scope="row">n</th><td>3</td>' in page


def test_edit_an_entry(world, browser_for):
    client = browser_for("member_a")
    page = client.get("/entry?ns=secret-ns&key=secret-key").text
    response = client.post("/entry", data={"csrf": csrf_of(page), "ns": "secret-ns", "key": "secret-key",
                                           "content": "new words", "metadata": '{"tag": "edited"}', "ttl": ""},
                           follow_redirects=False)
    assert response.status_code == 303
    got = world.client.get("/api/v1/memories/secret-ns/secret-key", headers=world.headers("member_a")).json()
    assert got["content"] == "new words" and got["metadata"] == {"tag": "edited"}
    log = world.tenancy.control.transactions(TransactionQuery(operation="memories.store"))
    assert log[0].target == "secret-ns/secret-key" and log[0].outcome == "ok"


def test_an_entrys_context_is_shown_and_kept_by_an_edit(world, browser_for):
    api_store(world, "member_a", key="t7", content="Yes, last spring!", namespace="turns", context="8 May 2023")
    client = browser_for("member_a")
    page = client.get("/entry?ns=turns&key=t7").text
    assert '<pre class="content" id="entry-context">8 May 2023</pre>' in page
    client.post("/entry", data={"csrf": csrf_of(page), "ns": "turns", "key": "t7", "content": "Yes!",
                                "context": "8 May 2023", "metadata": "", "ttl": ""}, follow_redirects=False)
    got = world.client.get("/api/v1/memories/turns/t7", headers=world.headers("member_a")).json()
    assert (got["content"], got["context"]) == ("Yes!", "8 May 2023")


def test_bad_metadata_is_a_400_page_that_says_what_to_change_and_changes_nothing(world, browser_for):
    client = browser_for("member_a")
    page = client.get("/entry?ns=secret-ns&key=secret-key").text
    for bad in ("{not json", "[1, 2]", '{"a":' * 5000 + "1" + "}" * 5000):  # too deep: no crash, a 4xx
        response = client.post("/entry", data={"csrf": csrf_of(page), "ns": "secret-ns", "key": "secret-key",
                                               "content": "x", "metadata": bad})
        assert response.status_code == 422 and "JSON object" in response.text
    got = world.client.get("/api/v1/memories/secret-ns/secret-key", headers=world.headers("member_a")).json()
    assert CANARY in got["content"]
    assert client.get("/entries?ns=x&page=0").status_code == 400


def test_delete_an_entry_after_confirmation(world, browser_for):
    client = browser_for("member_a")
    confirm = client.get("/entry/delete?ns=secret-ns&key=secret-key")
    assert "Delete entry &#39;secret-key&#39; from namespace &#39;secret-ns&#39;?" in confirm.text
    response = client.post("/entry/delete", data={"csrf": csrf_of(confirm.text), "ns": "secret-ns", "key": "secret-key"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert world.client.get("/api/v1/memories/secret-ns/secret-key", headers=world.headers("member_a")).status_code == 404
    assert world.tenancy.control.transactions(TransactionQuery(operation="memories.delete"))[0].outcome == "ok"


def test_delete_a_namespace_says_how_many_entries_go(world, browser_for):
    for i in range(3):
        api_store(world, "member_a", key=f"k{i}", content="x", namespace="doomed")
    client = browser_for("member_a")
    confirm = client.get("/namespace/delete?ns=doomed").text
    assert "and its 3 entries?" in confirm
    client.post("/namespace/delete", data={"csrf": csrf_of(confirm), "ns": "doomed"})
    assert "doomed" not in world.client.get("/api/v1/namespaces", headers=world.headers("member_a")).json()


def test_search_shows_match_type_scores_and_highlights(world, browser_for):
    api_store(world, "member_a", key="run", content="She was running <fast> through the park", namespace="s")
    page = browser_for("member_a").get("/search?q=runs&mode=fts&ns=s").text
    assert "<mark>running</mark>" in page and "&lt;fast&gt;" in page
    assert '<span class="badge fts">fts</span>' in page and "text rank 1" in page
    filtered = browser_for("member_a").get('/search?q=runs&ns=s&meta={"none": 1}').text
    assert "0 hits" in filtered
    bad = browser_for("member_a").get("/search?q=%22unclosed&mode=fts")
    assert bad.status_code == 400


def test_session_page_shows_transcript_tasks_summary_profile_and_checkpoints(world, browser_for):
    alpha = world.tenancy.memory(world.tenancy.control.project("alpha").id)
    sid = world.ids["session"]
    alpha.add_message(sid, "assistant", None, tool_calls=[
        {"id": "call_1", "type": "function", "function": {"name": "lookup_weather", "arguments": "{}"}}])
    client = browser_for("member_a")
    page = client.get(f"/session?id={sid}").text
    assert f"{CANARY} says hello" in page and f"the user is {CANARY}" in page
    assert "<details class=\"tool\"><summary>tool call lookup_weather" in page
    assert "planner" in page and world.ids["checkpoint"] in page
    assert f'href="/profile?user={CANARY_USER}"' in page
    assert CANARY in client.get(f"/profile?user={CANARY_USER}").text
    checkpoint = client.get(f"/checkpoint?id={world.ids['checkpoint']}").text
    assert "waiting_for" in checkpoint and CANARY in checkpoint
    assert f"/session?id={sid}" in client.get("/sessions?status=active").text
    assert sid not in client.get("/sessions?status=ended").text


def test_create_a_key_shows_it_once(world, browser_for):
    client = browser_for("admin_a")
    page = client.get("/admin/keys").text
    created = client.post("/admin/keys", data={"csrf": csrf_of(page), "project": "alpha", "role": "member",
                                               "name": "from the dashboard"})
    assert created.status_code == 200
    key = re.search(r'<pre class="secret" id="new-key">([^<]+)</pre>', created.text).group(1)
    assert world.client.get("/api/v1/namespaces", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert key not in client.get("/admin/keys").text
    denied = client.post("/admin/keys", data={"csrf": csrf_of(page), "role": "server_admin"})
    assert denied.status_code == 403


def test_revoke_a_key(world, browser_for):
    client = browser_for("admin_a")
    target = world.keys["member_a"].split("_")[1]
    confirm = client.get(f"/admin/keys/revoke?id={target}").text
    assert "Yes, revoke" in confirm
    client.post("/admin/keys/revoke", data={"csrf": csrf_of(confirm), "id": target})
    assert world.client.get("/api/v1/namespaces", headers=world.headers("member_a")).status_code == 401


def test_log_filters(world, browser_for):
    api_store(world, "member_a", key="x", content="y", namespace="n")
    client = browser_for("admin_a")
    row = "<td>memories.store</td>"
    assert row in client.get("/admin/log?operation=memories.store").text
    assert row not in client.get("/admin/log?operation=nothing.like.this").text
    assert row not in client.get("/admin/log?since=2999-01-01").text
    assert row in client.get("/admin/log?outcome=ok&until=2999-01-01").text
    assert client.get("/admin/log?since=yesterday").status_code == 422


def test_every_page_is_far_under_the_weight_limit(world, browser_for):
    client = browser_for("server_admin")
    alpha = browser_for("admin_a")
    for c, path in [(client, "/"), (client, "/static/app.css"), (client, "/admin/keys"), (client, "/admin/log"),
                    (alpha, "/entries?ns=secret-ns&size=100"), (alpha, f"/session?id={world.ids['session']}"),
                    (alpha, "/search?q=zebracanary")]:
        response = c.get(path)
        assert response.status_code == 200 and len(response.content) < MAX_PAGE_BYTES, path


# -- helpers ------------------------------------------------------------------------------
def test_count_entries_matches_the_listing():
    with Memory("memory://") as memory:
        for n in (0, 1, 2, 7, 64, 65):
            if n:
                memory.store_many([{"key": f"k{i}", "content": "c"} for i in range(n)], namespace=f"ns{n}")
            assert counts.exact_count(memory, f"ns{n}") == n == len(memory.list(namespace=f"ns{n}", limit=100))
        assert [(c.namespace, c.entries) for c in counts.largest_namespaces(memory, 2)] == [("ns65", 65), ("ns64", 64)]
        assert [c.namespace for c in counts.namespace_counts(memory)] == memory.namespaces()


def test_writes_per_day_buckets_the_last_days():
    def tx(day: int, outcome: str = "ok") -> Transaction:
        return Transaction(id=day, at=datetime(2026, 1, day, 12, tzinfo=timezone.utc), operation="memories.store",
                           outcome=outcome, status=200, duration_ms=1.0)

    days = counts.writes_per_day([tx(10), tx(10), tx(9, "InvalidInput"), tx(1)], 3, today=date(2026, 1, 10))
    assert days == [(date(2026, 1, 8), 0), (date(2026, 1, 9), 0), (date(2026, 1, 10), 2)]


def test_highlight_marks_stemmed_and_prefix_matches_only():
    parts = highlight.segments("Running runners ran; prefixed <b>", 'run OR pref*')
    assert [text for text, hit in parts if hit] == ["Running", "prefixed"]
    assert "".join(text for text, _ in parts) == "Running runners ran; prefixed <b>"
    assert highlight.segments("text", '"unclosed') == [("text", False)]
    assert highlight.segments("x" * 3000, "x")[-1][0].endswith("…")


def test_charts_scale_to_the_peak():
    chart = charts.columns([("a", 0), ("b", 5), ("c", 10)], title="t", height=104)
    assert [b.height for b in chart.bars] == [1.0, 50.0, 100.0] and chart.peak == 10
    assert charts.rows([], title="t").bars == []
    assert json.dumps([b.value for b in charts.rows([("x", 3)], title="t").bars]) == "[3]"


def test_store_an_entry_from_the_form(world, browser_for):
    client = browser_for("member_a")
    page = client.get("/namespaces").text
    response = client.post("/entries", data={"csrf": csrf_of(page), "ns": "typed", "key": "by hand",
                                             "content": "typed in the dashboard", "metadata": '{"via": "form"}',
                                             "ttl": "60"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/entry?ns=typed&key=by+hand&notice=saved"
    got = world.client.get("/api/v1/memories/typed/by hand", headers=world.headers("member_a")).json()
    assert got["content"] == "typed in the dashboard" and got["metadata"] == {"via": "form"}
    assert got["expires_at"] is not None
    bad = client.post("/entries", data={"csrf": csrf_of(page), "ns": "typed", "key": "", "content": "x"})
    assert bad.status_code == 422 and "key" in bad.text
    assert client.post("/entries", data={"ns": "typed", "key": "k", "content": "x"}).status_code == 403
