"""Hostile stored content shared by the escaping tests and the browser tests."""

from __future__ import annotations

SCRIPT = "<script>window.__xss = 'script'</script>"
IMG = "\"><img src=x onerror=\"window.__xss = 'img'\">"
LINK = "<a href=\"javascript:window.__xss='link'\">click me</a>"
JS_URI = "javascript:window.__xss='attachment'"
PAYLOADS = (SCRIPT, IMG, LINK)
# What must never appear raw in a page: each would run or load something.
RAW = ("<script>window", "<img src=x", 'href="javascript:', "onerror=\"window")


def store_payloads(world, who: str = "member_a") -> str:
    """Store every payload through the REST API in entries, metadata, keys, messages and attachments; returns the session id."""
    h = world.headers(who)
    c = world.client
    for i, payload in enumerate(PAYLOADS):
        r = c.post("/api/v1/memories", headers=h, json={
            "key": f"xss-{i}{payload}", "namespace": "xss", "content": f"payload zebra {payload}",
            "metadata": {"note": payload, payload: "as a key"},
        })
        assert r.status_code == 201, r.text
    session = c.post("/api/v1/sessions", headers=h, json={"metadata": {"title": SCRIPT}}).json()["id"]
    r = c.post(f"/api/v1/sessions/{session}/messages/batch", headers=h, json={"messages": [
        {"role": "user", "content": f"hi {SCRIPT} {IMG}", "user_id": "mallory",
         "attachments": [{"uri": JS_URI, "name": IMG}, {"uri": "https://example.com/report.pdf", "name": "report"}]},
        {"role": "assistant", "content": LINK, "tool_calls": [
            {"id": "call_x", "type": "function", "function": {"name": SCRIPT, "arguments": IMG}}]},
    ]})
    assert r.status_code == 201, r.text
    return session
