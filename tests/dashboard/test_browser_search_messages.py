"""The search page's messages scope in a real headless Chromium (skips like test_browser without one)."""

from __future__ import annotations

from .test_browser import SHOTS, Tab, chromium  # noqa: F401  (pytest fixtures)


def test_searching_messages_in_the_browser(chromium, live_world):  # noqa: F811
    world, live = live_world
    alpha = world.tenancy.memory(world.tenancy.control.project("alpha").id)
    message = alpha.add_message("trip", "user", "We watched the quokkas <b>smile</b> on Rottnest", user_id="ana")
    tab = Tab(chromium, live.url)
    try:
        tab.sign_in(world.keys["member_a"])
        tab.go("/search")
        tab.page.fill("#q", "quokka smiles")
        tab.page.select_option("#scope", "messages")
        tab.page.select_option("#mode", "fts")
        tab.page.fill("#user", "ana")
        marked = tab.search()
        assert "quokkas" in marked and "smile" in marked
        assert "<b>smile</b>" in tab.page.inner_text("ol.hits .snippet")  # stored markup stays text
        assert tab.page.inner_text("ol.hits .badge") == "fts"
        tab.page.screenshot(path=str(SHOTS / "search-messages.png"), full_page=True)
        tab.page.click(f"ol.hits a[href='/session?id={message.session_id}']")
        tab.page.wait_for_url(f"**/session?id={message.session_id}")
        tab.no_script_ran()
    finally:
        tab.close()
