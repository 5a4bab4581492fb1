"""The dashboard in a real headless Chromium (Debian's ``chromium``), driven by Playwright.

Each step saves a screenshot of its page under ``build/dashboard-screenshots/``
(ignored by git; docs/dashboard/ holds a copy of each for the README). Without
Chromium or Playwright these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.conftest import CANARY_SECRET

from .xss import store_payloads

CHROMIUM = os.environ.get("ENGRAM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "build" / "dashboard-screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests need it under CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install 'engram[test]')")
    if not Path(CHROMIUM).exists():
        _unavailable("chromium is not installed (apt-get install chromium chromium-driver)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class Tab:
    """One browser context (its own cookies) on the live server, recording dialogs and CSP violations."""

    def __init__(self, browser, base: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.base = base
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def go(self, path: str):
        response = self.page.goto(self.base + path)
        self.page.wait_for_load_state("load")
        return response

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def sign_in(self, key: str) -> None:
        self.go("/")
        assert self.page.url.startswith(self.base + "/login")
        self.page.fill("#api_key", key)
        self.page.click("#sign-in")
        self.page.wait_for_url(self.base + "/")

    def search(self) -> list[str]:
        """Submit the search form filled in; the highlighted words of its hits."""
        self.page.click("#search")
        self.page.wait_for_selector("ol.hits mark")
        return self.page.eval_on_selector_all("ol.hits mark", "els => els.map(e => e.textContent)")

    def no_script_ran(self) -> None:
        assert self.page.evaluate("() => window.__xss === undefined"), "an injected script ran"
        assert self.dialogs == []

    def close(self) -> None:
        self.context.close()


def test_the_dashboard_in_a_real_browser(chromium, live_world):
    world, live = live_world
    api = httpx.Client(base_url=live.url, headers=world.headers("admin_a"))
    session = store_payloads(world)
    tab = Tab(chromium, live.url)

    # sign in (the key goes in a password field and nowhere else)
    tab.go("/")
    tab.shot("login")
    tab.sign_in(world.keys["admin_a"])
    cookies = tab.context.cookies()
    assert [c["name"] for c in cookies] == ["engram_session"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert world.keys["admin_a"] not in str(cookies)
    assert "Overview" in tab.page.inner_text("h1")
    tab.no_script_ran()
    tab.shot("overview")

    # store through the API, see the entry
    stored = api.post("/api/v1/memories", json={"key": "quokka-fact", "namespace": "animals",
                                                 "content": "The quokka is a small marsupial that smiles",
                                                 "metadata": {"source": "browser test", "legs": 4}})
    assert stored.status_code == 201
    tab.go("/namespaces")
    tab.shot("namespaces")
    tab.page.click("text=animals")
    tab.page.wait_for_url("**/entries?ns=animals")
    assert "quokka-fact" in tab.page.inner_text("table.entries")
    tab.shot("entries")
    tab.page.click("text=quokka-fact")
    assert "small marsupial" in tab.page.inner_text("#entry-content")
    tab.shot("entry")

    # search and see the hit highlighted
    tab.go("/search")
    tab.page.fill("#q", "quokkas smile")
    tab.page.select_option("#mode", "fts")
    marked = tab.search()
    assert "quokka" in marked and "smiles" in marked
    assert tab.page.inner_text("ol.hits .badge") == "fts"
    tab.shot("search")

    # the hostile entries render as text, and nothing they carry runs
    tab.go("/entries?ns=xss")
    assert "<script>" in tab.page.inner_text("table.entries")
    tab.no_script_ran()
    tab.go("/search?q=payload&mode=fts")
    tab.no_script_ran()

    # a session's transcript: tool calls folded, attachments linked only when http(s)
    tab.go("/sessions")
    tab.shot("sessions")
    tab.go(f"/session?id={session}")
    assert tab.page.locator("details.tool").first.get_attribute("open") is None
    assert "<script>" in tab.page.inner_text("ol.transcript")
    assert tab.page.locator('a[href^="javascript:"]').count() == 0
    assert tab.page.locator('a[href="https://example.com/report.pdf"]').count() == 1
    tab.no_script_ran()
    added = api.post(f"/api/v1/sessions/{world.ids['session']}/messages/batch", json={"messages": [
        {"role": "assistant", "content": "Let me look that up.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Perth"}'}}]},
        {"role": "tool", "content": '{"forecast": "sunny, 24 C"}', "tool_call_id": "call_1"},
        {"role": "user", "content": "Thanks! Here is my itinerary.", "user_id": "canary-user",
         "attachments": [{"uri": "https://example.com/itinerary.pdf", "name": "itinerary.pdf",
                          "media_type": "application/pdf", "size_bytes": 48213}]},
    ]})
    assert added.status_code == 201, added.text
    tab.go(f"/session?id={world.ids['session']}")
    assert "itinerary.pdf" in tab.page.inner_text("ol.transcript")
    tab.shot("session")

    # delete an entry, with confirmation
    tab.go("/entry?ns=animals&key=quokka-fact")
    tab.page.click("#delete-entry")
    assert "Delete entry 'quokka-fact'" in tab.page.inner_text("p.question")
    tab.shot("confirm")
    tab.page.click("#confirm")
    tab.page.wait_for_url("**/entries?ns=animals&notice=deleted")
    assert api.get("/api/v1/memories/animals/quokka-fact").status_code == 404

    # reveal a variable: the value only after the click
    tab.go("/variables")
    assert CANARY_SECRET not in tab.page.content()
    tab.page.click('button.reveal[data-name="CANARY_VAR"]')
    assert tab.page.inner_text("#revealed-value") == CANARY_SECRET
    tab.shot("variables")

    # the admin pages of a project admin
    tab.go("/admin/keys")
    tab.shot("keys")
    tab.go("/admin/log")
    assert "memories.store" in tab.page.inner_text("table.log")
    tab.shot("log")

    # sign out: the session is gone on the server too
    tab.page.click("#sign-out")
    tab.page.wait_for_url("**/login?notice=signed-out")
    tab.go("/")
    assert tab.page.url.startswith(live.url + "/login")
    tab.close()

    # the server administrator's pages
    server = Tab(chromium, live.url)
    server.sign_in(world.keys["server_admin"])
    server.go("/admin/projects")
    assert "alpha" in server.page.inner_text("table")
    server.shot("projects")
    server.go("/admin/users")
    server.shot("users")
    server.close()

    # a member key cannot open admin pages
    member = Tab(chromium, live.url)
    member.sign_in(world.keys["member_a"])
    assert member.page.locator('nav a[href="/admin/keys"]').count() == 0
    for path in ("/admin/keys", "/admin/log", "/admin/projects", "/admin/users"):
        response = member.go(path)
        assert response.status == 403, path
        assert "PermissionDenied" in member.page.inner_text("h1")
    member.shot("forbidden")
    member.close()
    api.close()


def test_every_page_loads_under_the_weight_limit_in_the_browser(chromium, live_world):
    """Bytes the browser receives for each page, its stylesheet and icon included."""
    world, live = live_world
    tab = Tab(chromium, live.url)
    tab.sign_in(world.keys["server_admin"])
    sizes: dict[str, int] = {}
    for path in ("/", "/namespaces", "/search?q=zebracanary", "/sessions", "/tasks", "/variables", "/admin/keys",
                 "/admin/log", "/admin/projects", "/admin/users"):
        tab.go(path)
        # the page and everything it loaded, counted at full size even when the browser had it cached
        sizes[path] = tab.page.evaluate(
            "() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]"
            ".reduce((n, e) => n + Math.max(e.transferSize, e.encodedBodySize), 0)"
        )
    tab.close()
    assert all(0 < size < 200 * 1024 for size in sizes.values()), sizes
