"""Failed-authentication limiting: never locks out a valid key, per address and per key, proxies believed only when trusted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from engram import load_settings
from engram.errors import ConfigError, InvalidInput, RateLimited
from engram.server.app import create_app
from engram.server.clients import TrustedProxies
from engram.server.ratelimit import FailureLimiter

from .conftest import World, build_world

API = "/api/v1"
LIMIT = 20


@pytest.fixture
def limited(tmp_path) -> Iterator[World]:
    w = build_world(tmp_path, max_auth_failures=LIMIT)
    with w.client:
        yield w
    w.tenancy.close()


def client_for(world: World, peer: str, *, allow: str | None = None, limit: int = LIMIT) -> TestClient:
    """A client of a fresh app over the same world, connecting from ``peer``."""
    app = create_app(tenancy=world.tenancy, max_auth_failures=limit, forwarded_allow_ips=allow)
    return TestClient(app, client=(peer, 40000))


def bad_key(n: int) -> str:
    return f"engram_{n:012x}_" + "x" * 43


def test_bad_keys_never_lock_out_the_valid_key(limited: World) -> None:
    c = limited.client
    statuses = [c.get(f"{API}/stats", headers={"Authorization": f"Bearer {bad_key(n)}"}).status_code for n in range(50)]
    assert statuses[:LIMIT] == [401] * LIMIT and set(statuses[LIMIT:]) == {429}
    assert c.get(f"{API}/stats", headers=limited.headers("member_a")).status_code == 200
    assert c.post("/mcp", headers=limited.headers("member_a"), json={}).status_code != 429
    # Still limited for the guesser.
    r = c.get(f"{API}/stats", headers={"X-API-Key": bad_key(99)})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_untrusted_forwarded_headers_do_not_escape_the_limit(limited: World) -> None:
    statuses = [
        limited.client.get(f"{API}/stats", headers={"Authorization": f"Bearer {bad_key(n)}",
                                                    "X-Forwarded-For": f"198.51.100.{n % 250}",
                                                    "Forwarded": f"for=203.0.113.{n % 250}"}).status_code
        for n in range(200)
    ]
    assert statuses.count(401) == LIMIT and statuses.count(429) == 200 - LIMIT


def test_untrusted_peer_is_the_client_even_behind_a_header(limited: World) -> None:
    with client_for(limited, "192.0.2.1", allow="10.0.0.0/8", limit=3) as c:
        for n in range(3):
            assert c.get(f"{API}/stats", headers={"X-API-Key": bad_key(n), "X-Forwarded-For": f"10.9.9.{n}"}).status_code == 401
        assert c.get(f"{API}/stats", headers={"X-API-Key": bad_key(7), "X-Forwarded-For": "10.9.9.9"}).status_code == 429


def test_trusted_proxy_names_the_client(limited: World) -> None:
    with client_for(limited, "10.0.0.5", allow="10.0.0.0/8", limit=3) as c:
        def attempt(n: int, forwarded_for: str | None) -> int:
            headers = {"X-API-Key": bad_key(n)}
            if forwarded_for is not None:
                headers["X-Forwarded-For"] = forwarded_for
            return c.get(f"{API}/stats", headers=headers).status_code

        assert [attempt(n, "203.0.113.7") for n in range(4)] == [401, 401, 401, 429]
        # Another client behind the same proxy is not limited by the first one's failures...
        assert attempt(10, "203.0.113.8") == 401
        # ...the client is the first untrusted hop from the right, whatever it wrote itself...
        assert attempt(11, "1.2.3.4, 203.0.113.7, 10.0.0.9") == 429
        # ...and RFC 7239 Forwarded is read when there is no X-Forwarded-For.
        headers = {"X-API-Key": bad_key(12), "Forwarded": 'for="203.0.113.7:4711";proto=https'}
        assert c.get(f"{API}/stats", headers=headers).status_code == 429
        assert c.get(f"{API}/stats", headers={**limited.headers("member_a"), "X-Forwarded-For": "203.0.113.7"}).status_code == 200


def test_one_key_guessed_from_many_addresses_is_limited(limited: World) -> None:
    target = limited.tenancy.control.authenticate(limited.keys["member_a"]).key_prefix
    with client_for(limited, "10.0.0.5", allow="10.0.0.0/8", limit=3) as c:
        statuses = [
            c.get(f"{API}/stats", headers={"X-API-Key": f"{target}_{n:043d}", "X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(6)
        ]
        assert statuses == [401, 401, 401, 429, 429, 429]
        assert "with key" in c.get(f"{API}/stats", headers={"X-API-Key": f"{target}_{'y' * 43}",
                                                             "X-Forwarded-For": "198.51.100.77"}).json()["error"]["message"]
        # The key itself still works, from anywhere.
        assert c.get(f"{API}/stats", headers={**limited.headers("member_a"), "X-Forwarded-For": "198.51.100.1"}).status_code == 200


def test_limiter_memory_is_bounded_and_windows_expire() -> None:
    now = [0.0]
    limiter = FailureLimiter(max_failures=2, window=10, clock=lambda: now[0], max_tracked=100)
    for n in range(5000):
        limiter.failed(f"198.51.100.{n}", f"engram_{n:012x}")
    assert limiter.tracked() <= 200
    limiter.failed("client", "engram_000000000001")
    limiter.failed("client")
    with pytest.raises(RateLimited) as refused:
        limiter.failed("client")
    assert refused.value.retry_after == 10
    now[0] = 10.5
    limiter.failed("client")  # the window moved on


def test_trusted_proxies_parse_and_refuse_nonsense() -> None:
    proxies = TrustedProxies("10.0.0.0/8, 2001:db8::1")
    assert proxies.trusts("10.1.2.3") and proxies.trusts("2001:db8::1") and not proxies.trusts("192.0.2.1")
    assert proxies.client("2001:db8::1", {"forwarded": 'for="[2001:db8::7]:4711"'}) == "2001:db8::7"
    assert proxies.client("192.0.2.1", {"x-forwarded-for": "1.2.3.4"}) == "192.0.2.1"
    assert TrustedProxies("*").client("192.0.2.1", {"x-forwarded-for": "1.2.3.4, 5.6.7.8"}) == "1.2.3.4"
    assert not TrustedProxies(None) and TrustedProxies(None).client("192.0.2.1", {"x-forwarded-for": "1.2.3.4"}) == "192.0.2.1"
    with pytest.raises(InvalidInput):
        TrustedProxies("10.0.0.0/8, proxy.example")
    with pytest.raises(ConfigError, match="forwarded_allow_ips"):
        load_settings(forwarded_allow_ips="not-an-ip")


def test_serve_gives_uvicorn_the_same_trusted_proxies(tmp_path, monkeypatch) -> None:
    import uvicorn

    from engram.cli import cli

    seen: list[dict] = []

    def run(app, **options):  # stands in for the network server only: no store is faked
        seen.append({**options, "app_trusts": app.state.proxies.trusts("10.0.0.1")})

    monkeypatch.setattr(uvicorn, "run", run)
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", url, "serve", "--forwarded-allow-ips", "10.0.0.0/8"]).exit_code == 0
    assert runner.invoke(cli, ["--db", url, "serve"]).exit_code == 0
    assert [(s["proxy_headers"], s["forwarded_allow_ips"], s["app_trusts"]) for s in seen] == [
        (True, "10.0.0.0/8", True), (False, "", False)]
    bad = runner.invoke(cli, ["--db", url, "serve", "--forwarded-allow-ips", "proxy.example"])
    assert bad.exit_code == 2 and "forwarded_allow_ips" in bad.output
