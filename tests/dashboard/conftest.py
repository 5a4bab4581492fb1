"""A server world (tests/server/conftest.py) and signed-in dashboard clients over it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("jinja2")

from fastapi.testclient import TestClient  # noqa: E402

# The server tests' fixtures, shared: ``world`` (TestClient) and ``live_world`` (under uvicorn).
from server.conftest import World, live_world, world  # noqa: F401

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> TestClient:
    """Sign ``client`` in through the sign-in form; fails the test unless it lands on the overview."""
    page = client.get("/login")
    assert page.status_code == 200
    response = client.post("/login", data={"csrf": csrf_of(page.text), "api_key": key, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    return client


@pytest.fixture
def browser_for(world: World) -> Iterator:  # noqa: F811  (the fixture imported above)
    """``browser_for("member_a")``: a fresh TestClient (own cookie jar) signed in with that key."""
    clients: list[TestClient] = []

    def make(who: str) -> TestClient:
        client = TestClient(world.app)
        clients.append(client)
        return sign_in(client, world.keys[who])

    yield make
    for c in clients:
        c.close()
