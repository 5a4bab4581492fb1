"""The search page's "messages" scope: ``Memory.search_messages`` with the entries' modes and highlighting."""

from __future__ import annotations

from server.conftest import CANARY, CANARY_USER


def test_message_search_shows_hits_scores_and_highlights(world, browser_for):
    alpha = world.tenancy.memory(world.tenancy.control.project("alpha").id)
    other = alpha.add_message("chat-2", "assistant", "She was running <fast> to the station", user_id="bo")
    alpha.store("entry-run", "running entries are not messages", namespace="s")
    client = browser_for("member_a")

    page = client.get("/search?q=runs&mode=fts&scope=messages").text
    assert "1 hit" in page and "<mark>running</mark>" in page and "&lt;fast&gt;" in page
    assert '<span class="badge fts">fts</span>' in page and "text rank 1" in page
    assert f'href="/session?id={other.session_id}"' in page and 'href="/profile?user=bo"' in page
    assert "entry-run" not in page  # entries are another scope
    assert '<option selected>messages</option>' in page

    mine = client.get(f"/search?q={CANARY}&scope=messages&user={CANARY_USER}").text
    assert f"<mark>{CANARY}</mark> says hello" in mine
    assert "0 hits" in client.get(f"/search?q={CANARY}&scope=messages&user=bo").text
    assert "0 hits" in client.get(f"/search?q={CANARY}&scope=messages&session=chat-2").text
    assert "1 hit" in client.get(f"/search?q={CANARY}&scope=messages&session={world.ids['session']}").text


def test_message_search_stays_in_the_project(world, browser_for):
    page = browser_for("member_b").get(f"/search?q={CANARY}&scope=messages&mode=fts").text
    assert "0 hits" in page and "<option selected>messages</option>" in page


def test_message_search_refuses_filters_of_the_other_scope_and_bad_queries(world, browser_for):
    client = browser_for("member_a")
    for path, words in [
        (f"/search?q={CANARY}&scope=messages&ns=secret-ns", "a namespace narrows entries only"),
        (f"/search?q={CANARY}&scope=messages&meta=%7B%7D", "a metadata filter narrows entries only"),
        (f"/search?q={CANARY}&scope=entries&user=bo", "a user narrows messages only"),
        (f"/search?q={CANARY}&session=x", "a session narrows messages only"),
    ]:
        response = client.get(path)
        assert response.status_code == 422 and words in response.text, path
    assert client.get("/search?q=%22unclosed&mode=fts&scope=messages").status_code == 400
    bad = client.get(f"/search?q={CANARY}&scope=sessions")
    assert bad.status_code == 400 and "scope: Input should be &#39;entries&#39; or &#39;messages&#39;" in bad.text
