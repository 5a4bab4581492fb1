"""Stored content is data: markup in entries, metadata, keys and messages renders as text."""

from __future__ import annotations

from urllib.parse import quote

from .xss import JS_URI, RAW, SCRIPT, store_payloads


def test_hostile_content_renders_as_text_everywhere(world, browser_for):
    session = store_payloads(world)
    client = browser_for("member_a")
    key = quote("xss-0" + SCRIPT, safe="")
    pages = ["/", "/namespaces", "/entries?ns=xss", f"/entry?ns=xss&key={key}", "/search?q=zebra&mode=fts",
             f"/search?q={quote(SCRIPT)}", "/sessions", f"/session?id={session}", f"/entry/delete?ns=xss&key={key}"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        for raw in RAW:
            assert raw not in response.text, f"{raw!r} raw on {path}"
    entry = client.get(f"/entry?ns=xss&key={key}").text
    assert "&lt;script&gt;window.__xss = &#39;script&#39;&lt;/script&gt;" in entry
    transcript = client.get(f"/session?id={session}").text
    assert JS_URI.replace("'", "&#39;") in transcript  # shown as text, not linked
    assert 'href="https://example.com/report.pdf"' in transcript  # an ordinary attachment is linked
