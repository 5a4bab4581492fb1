"""Sign-in, sessions, sign-out, CSRF and the security headers of the dashboard."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from engram.server.dashboard.sessions import COOKIE, SessionStore

from .conftest import csrf_of, sign_in


def test_pages_need_a_session(world):
    client = TestClient(world.app)
    for path in ("/", "/namespaces", "/search?q=x", "/admin/keys", "/variables"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login")
    response = client.get("/entries?ns=a%20b", follow_redirects=False)
    assert response.headers["location"] == "/login?next=%2Fentries%3Fns%3Da%2520b"


def test_sign_in_sets_a_strict_httponly_cookie_and_never_echoes_the_key(world):
    client = TestClient(world.app)
    page = client.get("/login")
    key = world.keys["member_a"]
    response = client.post("/login", data={"csrf": csrf_of(page.text), "api_key": key, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    assert key not in token and len(token) >= 40
    for path in ("/", "/namespaces", "/variables", "/sessions"):
        body = client.get(path)
        assert body.status_code == 200
        assert key not in body.text and key not in str(body.headers)


def test_a_wrong_key_gets_the_form_again_and_no_session(world):
    client = TestClient(world.app)
    page = client.get("/login")
    wrong = "engram_000000000000_" + "y" * 43
    response = client.post("/login", data={"csrf": csrf_of(page.text), "api_key": wrong}, follow_redirects=False)
    assert response.status_code == 401
    assert "Sign-in failed" in response.text and wrong not in response.text
    assert COOKIE not in response.cookies
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_refuses_a_form_without_its_csrf_cookie(world):
    page = TestClient(world.app).get("/login")  # another browser's form
    response = TestClient(world.app).post("/login", data={"csrf": csrf_of(page.text), "api_key": world.keys["admin_a"]},
                                          follow_redirects=False)
    assert response.status_code == 400
    assert COOKIE not in response.cookies


@pytest.mark.parametrize("target", ["//evil.example/x", "/\t/evil.example", "https://evil.example", "/\\evil.example",
                                    "javascript:alert(1)"])
def test_sign_in_goes_back_to_a_local_page_only(world, target):
    client = TestClient(world.app)
    page = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "api_key": world.keys["admin_a"],
                                           "next": target}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_sign_in_goes_back_to_the_page_asked_for(world):
    client = TestClient(world.app)
    first = client.get("/sessions?status=active")  # not signed in: the sign-in page remembers where to go
    assert 'name="next" value="/sessions?status=active"' in first.text
    response = client.post("/login", data={"csrf": csrf_of(first.text), "api_key": world.keys["admin_a"],
                                           "next": "/sessions?status=active"}, follow_redirects=False)
    assert response.headers["location"] == "/sessions?status=active"


def test_security_headers_on_every_page(world, browser_for):
    client = browser_for("admin_a")
    for path in ("/", "/login", "/namespaces", "/search?q=zebracanary", "/nope-entry", "/entry?ns=x&key=y"):
        response = client.get(path, follow_redirects=False)
        if response.status_code == 404 and "json" in response.headers["content-type"]:
            continue  # not a dashboard route
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), f"inline script on {path}"
        assert not re.search(r"""(src|href)="(https?:)?//""", response.text), f"external asset on {path}"


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(world, browser_for):
    client = browser_for("admin_a")
    for data in ({"ns": "secret-ns", "key": "secret-key"}, {"ns": "secret-ns", "key": "secret-key", "csrf": "forged"}):
        response = client.post("/entry/delete", data=data)
        assert response.status_code == 403
        assert "reload the page" in response.text
    assert client.get("/entry?ns=secret-ns&key=secret-key").status_code == 200


def test_csrf_token_of_one_session_does_not_work_in_another(world, browser_for):
    first, second = browser_for("admin_a"), browser_for("admin_a")
    token = csrf_of(first.get("/").text)
    response = second.post("/entry/delete", data={"ns": "secret-ns", "key": "secret-key", "csrf": token})
    assert response.status_code == 403


def test_sign_out_ends_the_session_on_the_server(world, browser_for):
    client = browser_for("member_a")
    token = client.cookies.get(COOKIE)
    response = client.post("/logout", data={"csrf": csrf_of(client.get("/").text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?notice=signed-out"
    replay = TestClient(world.app, cookies={COOKIE: token})
    assert replay.get("/", follow_redirects=False).status_code == 303


def test_a_revoked_key_signs_its_browsers_out(world, browser_for):
    client = browser_for("member_a")
    key_id = world.keys["member_a"].split("_")[1]
    world.tenancy.control.revoke_key(key_id)
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.fixture(params=["process", "postgresql"])
def session_store(request):
    """A store of sign-ins on a clock the test turns: this process's, or one every server shares."""
    now = [0.0]
    if request.param == "process":
        yield now, SessionStore(lifetime=10, max_sessions=2, clock=lambda: now[0])
        return
    from engram.server.dashboard._shared_sessions import SharedSessionStore
    from engram.stores.postgres.control import PostgresControlStore

    rows = PostgresControlStore.for_server(request.getfixturevalue("postgres_url"))
    yield now, SharedSessionStore(rows, lifetime=10, max_sessions=2, clock=lambda: now[0])
    rows.close()


def test_session_store_expires_and_bounds_sessions(session_store):
    now, store = session_store
    a, _ = store.create("k1")
    b, _ = store.create("k2")
    c, _ = store.create("k3")
    assert store.get(a) is None  # the oldest went when the third arrived
    assert store.get(b).key_id == "k2" and store.get(c).key_id == "k3"
    now[0] = 10.0
    assert store.get(b) is None and store.get(c) is None
    assert store.get(None) is None and store.get("") is None


def test_sign_in_failures_count_against_the_limiter(tmp_path):
    from server.conftest import build_world

    w = build_world(tmp_path, max_auth_failures=2)
    with w.client:
        client = TestClient(w.app)
        statuses = []
        for _ in range(4):
            page = client.get("/login")
            statuses.append(client.post("/login", data={"csrf": csrf_of(page.text), "api_key": "x" * 30}).status_code)
        assert statuses[-1] == 429
        sign_in(client, w.keys["member_a"])  # a valid key still gets through
    w.tenancy.close()


def test_a_sign_in_holds_on_every_server_of_one_postgresql_database(tmp_path, postgres_url):
    """Two apps (two servers) on one database: a cookie from one is good on the other; sign-out ends both."""
    from server.conftest import build_world

    from engram import load_settings
    from engram.server.app import create_app
    from engram.server.tenancy import Tenancy

    w = build_world(tmp_path, url=postgres_url)
    other = Tenancy(load_settings(database_url=postgres_url, secret_key=w.tenancy.settings.secret_key))
    try:
        with TestClient(w.app) as first, TestClient(create_app(tenancy=other)) as second:
            sign_in(first, w.keys["admin_a"])
            second.cookies = first.cookies
            page = second.get("/", follow_redirects=False)
            assert page.status_code == 200
            logout = second.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
            assert logout.status_code == 303
            assert first.get("/", follow_redirects=False).status_code == 303  # signed out there too
    finally:
        other.close()
        w.tenancy.close()
