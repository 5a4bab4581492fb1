"""Failed authentications counted for every server: on PostgreSQL (the default there) or in Redis.

Two apps, each with its own Tenancy (its own pools, as two processes have), on one
database: a guesser spreading tries over both gets the limit in all, not twice it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from engram import load_settings
from engram.errors import ConfigError
from engram.server._shared_limiter import SharedFailureLimiter, limiter_for
from engram.server.app import create_app
from engram.server.ratelimit import FailureLimiter
from engram.server.tenancy import Tenancy

API = "/api/v1"
LIMIT = 5


def bad_key(n: int) -> str:
    return f"engram_{n:012x}_" + "x" * 43


def servers(url: str, count: int = 2, **settings: str) -> Iterator[list[TestClient]]:
    tenancies = [
        Tenancy(load_settings(database_url=url, secret_key=Fernet.generate_key().decode(), **settings))
        for _ in range(count)
    ]
    tenancies[0].control.bootstrap()
    clients = [TestClient(create_app(tenancy=t, max_auth_failures=LIMIT), client=("192.0.2.7", 40000)) for t in tenancies]
    try:
        for c in clients:
            c.__enter__()
        yield clients
    finally:
        for c in clients:
            c.__exit__(None, None, None)
        for t in tenancies:
            t.close()


@pytest.fixture
def pg_servers(postgres_url: str) -> Iterator[list[TestClient]]:
    yield from servers(postgres_url)


@pytest.fixture
def redis_servers(tmp_path, redis_url: str) -> Iterator[list[TestClient]]:
    yield from servers(f"sqlite:///{tmp_path / 'engram.db'}", auth_failures_url=redis_url)


def spread_failures(clients: list[TestClient], tries: int) -> list[int]:
    """Bad keys from one address, alternating between the servers."""
    return [
        clients[n % len(clients)].get(f"{API}/stats", headers={"X-API-Key": bad_key(n)}).status_code
        for n in range(tries)
    ]


@pytest.mark.parametrize("where", ["pg_servers", "redis_servers"])
def test_the_limit_holds_across_servers(where: str, request: pytest.FixtureRequest) -> None:
    clients = request.getfixturevalue(where)
    statuses = spread_failures(clients, 3 * LIMIT)
    assert statuses[:LIMIT] == [401] * LIMIT and set(statuses[LIMIT:]) == {429}, statuses
    r = clients[1].get(f"{API}/stats", headers={"X-API-Key": bad_key(999)})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert "from this client" in r.json()["error"]["message"]


def test_a_guessed_key_prefix_is_limited_across_servers_and_addresses(postgres_url: str) -> None:
    gen = servers(postgres_url, forwarded_allow_ips="192.0.2.7")  # the test clients' peer, a trusted proxy
    clients = next(gen)
    try:
        key = bad_key(42)
        statuses = []
        for n in range(2 * LIMIT):
            c = clients[n % 2]
            # A new address each try: only the key's prefix is over the limit.
            r = c.get(f"{API}/stats", headers={"X-API-Key": key, "X-Forwarded-For": f"203.0.113.{n}"})
            statuses.append(r.status_code)
        assert statuses.count(401) == LIMIT and statuses[LIMIT:] == [429] * LIMIT
        assert "with key engram_00000000002a" in r.json()["error"]["message"]
    finally:
        gen.close()


def test_the_configured_limiter(tmp_path, postgres_url: str) -> None:
    sqlite = load_settings(database_url=f"sqlite:///{tmp_path / 'e.db'}")
    with Tenancy(sqlite) as tenancy:
        assert isinstance(limiter_for(sqlite, tenancy.control.store, 3, 60), FailureLimiter)
        bad = sqlite.model_copy(update={"auth_failures_url": "postgresql://elsewhere/db"})
        with pytest.raises(ConfigError, match="auth_failures_url .* must be redis://"):
            limiter_for(bad, tenancy.control.store, 3, 60)
    pg = load_settings(database_url=postgres_url)
    with Tenancy(pg) as tenancy:
        assert isinstance(limiter_for(pg, tenancy.control.store, 3, 60), SharedFailureLimiter)
        local = pg.model_copy(update={"auth_failures_url": "memory://"})
        assert isinstance(limiter_for(local, tenancy.control.store, 3, 60), FailureLimiter)


def test_old_failures_leave_the_window_and_are_pruned(postgres_url: str) -> None:
    now = [1_000_000.0]
    with Tenancy(load_settings(database_url=postgres_url)) as tenancy:
        store = tenancy.control.store
        limiter = SharedFailureLimiter(store, 2, 10.0, clock=lambda: now[0])
        limiter.failed("c1")
        limiter.failed("c1")
        with pytest.raises(Exception, match="retry in 10 seconds"):
            limiter.failed("c1")
        now[0] += 10.5
        limiter.failed("c1")  # the first two left the window
        now[0] += 100
        limiter.failed("c2")  # a minute has passed: the stale rows of c1 are pruned
        rows = store.query("reading", "SELECT subject FROM auth_failures ORDER BY subject")
        assert [r["subject"] for r in rows] == ["client:c2"]
