"""Authorization matrix generated from the app's routes.

Every route under /api/v1 x {no key, malformed, unknown, revoked, expired, other
project's member and admin, member, project admin, server admin}: the expected
401/403/404, the one error shape, and never a byte of another project's data. A
route with a ``project`` query parameter is also called naming project alpha. A
route added to the app joins the matrix by itself; it only needs a request body
below if it takes one.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from engram.server import deps
from engram.stores.control_base import TransactionQuery

from .conftest import CANARY, CANARY_SECRET, CANARY_USER, World, build_world

UNAUTHENTICATED = ("none", "malformed", "unknown", "revoked", "expired")
PRINCIPALS = (*UNAUTHENTICATED, "member_b", "admin_b", "member_a", "admin_a", "server_admin")
PROJECT_ADMINS = ("admin_a", "admin_b")
_unique = itertools.count()


def bodies(world: World) -> dict[str, Any]:
    n = next(_unique)
    return {
        "memories.store": {"key": "probe", "content": "probe"},
        "memories.store_many": {"items": [{"key": "probe2", "content": "probe"}]},
        "search": {"query": CANARY},
        "sessions.start": {"metadata": {"probe": True}},
        "sessions.end": {"status": "ended"},
        "sessions.update_metadata": {"metadata": {"probe": True}},
        "runs.start": {"agent_id": "probe"},
        "runs.pause": {"state": {"probe": True}},
        "runs.finish": {"status": "cancelled"},
        "tasks.create": {"agent_type": "probe", "session_id": world.ids["session"]},
        "tasks.update": {"status": "running"},
        "variables.set": {"value": "probe"},
        "messages.add": {"role": "user", "content": "probe", "user_id": CANARY_USER},
        "messages.add_many": {"messages": [{"role": "user", "content": "probe"}]},
        "messages.search": {"query": CANARY},
        "checkpoints.save": {"state": {"probe": True}},
        "prune": {"older_than_days": 36500, "dry_run": True},
        "admin.projects.create": {"name": f"probe-project-{n}"},
        "admin.users.create": {"name": f"probe-user-{n}"},
        "admin.keys.create": {"project": "alpha", "role": "member"},
    }


def path_values(world: World, route: APIRoute) -> dict[str, str]:
    """Path parameters that address project alpha's records."""
    return {
        "namespace": "secret-ns",
        "key": "secret-key",
        "session_id": world.ids["session"],
        "task_id": world.ids["task"],
        "name": "CANARY_VAR" if "/variables/" in route.path else "nobody",
        "key_id": world.ids["revoked_key"],
        "user_id": CANARY_USER,
        "checkpoint_id": world.ids["checkpoint"],
        "run_id": world.ids["run"],
        "blob_id": world.ids["blob"],
    }


def all_routes(routes) -> list[Any]:
    """Routes, with those of included routers flattened (newer FastAPI keeps them nested)."""
    flat = []
    for route in routes:
        nested = getattr(route, "original_router", None)
        flat.extend(all_routes(nested.routes) if nested is not None else [route])
    return flat


def api_routes(app) -> list[tuple[str, APIRoute]]:
    found = [
        (method, route)
        for route in all_routes(app.routes)
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1")
        for method in sorted(route.methods)
    ]
    # Read-only requests first, destructive ones last, so one world serves a whole row.
    order = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    return sorted(found, key=lambda mr: (order[mr[0]], mr[1].path))


def depends_on(route: APIRoute, dependency) -> bool:
    def walk(dependant) -> bool:
        return any(d.call is dependency or walk(d) for d in dependant.dependencies)

    return walk(route.dependant)


def needs_admin(route: APIRoute) -> bool:
    return depends_on(route, deps.admin)


def needs_server_admin(route: APIRoute) -> bool:
    return depends_on(route, deps.server_admin)


def variants(route: APIRoute) -> list[dict[str, str]]:
    """Query strings to call a route with: none, and ``project=alpha`` where it takes a project."""
    takes_project = any(p.name == "project" for p in route.dependant.query_params)
    return [{}, {"project": "alpha"}] if takes_project else [{}]


def names_alpha(world: World, route: APIRoute, params: dict[str, str]) -> bool:
    """Does this request point an admin route at project alpha (query, body or a key id of alpha)?"""
    body = bodies(world).get(route.name) or {}
    return (
        params.get("project") == "alpha"
        or (isinstance(body, dict) and body.get("project") == "alpha")
        or "{key_id}" in route.path
    )


def call(world: World, who: str, method: str, route: APIRoute, params: dict[str, str] | None = None):
    template = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # drop convertors: {key:path} -> {key}
    path = template.format(**path_values(world, route))
    body = bodies(world).get(route.name)
    if route.body_field is not None and body is None and route.body_field.required:
        pytest.fail(f"route {route.name} takes a body: add an example to bodies()")
    return world.client.request(method, path, json=body, params=params or None, headers=world.headers(who))


def alpha_markers(world: World) -> list[str]:
    """What of project alpha's control plane must never reach beta: its id, its keys' ids and prefixes."""
    control = world.tenancy.control
    keys = control.keys("alpha", include_revoked=True)
    return [control.project("alpha").id, *(k.id for k in keys), *(k.prefix for k in keys)]


def alpha_state(world: World) -> tuple[Any, ...]:
    """Alpha's keys (with their revocations) and its transaction log, to compare before and after."""
    control = world.tenancy.control
    keys = [(k.id, k.role, k.revoked_at) for k in control.keys("alpha", include_revoked=True)]
    log = [t.id for t in control.transactions(TransactionQuery(limit=10_000), project="alpha")]
    return keys, log


def assert_error_shape(response) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "status", "message", "details"}, body
    assert body["error"]["status"] == response.status_code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.parametrize("who", PRINCIPALS)
def test_matrix(tmp_path, who: str, server_url: str) -> None:
    world = build_world(tmp_path, url=server_url)
    with world.client:
        routes = api_routes(world.app)
        assert len(routes) >= 25
        markers = alpha_markers(world)
        before = alpha_state(world)
        for method, route, params in [(m, r, p) for m, r in routes for p in variants(r)]:
            r = call(world, who, method, route, params)
            label = f"{who} {method} {route.path} {params}"
            assert r.status_code < 500, f"{label}: {r.status_code} {r.text}"
            if r.status_code >= 400 and method != "HEAD":  # a HEAD answer has no body
                assert_error_shape(r)
            if who in UNAUTHENTICATED:
                assert r.status_code == 401, f"{label}: {r.status_code}"
                continue
            assert r.status_code != 401, f"{label}: {r.text}"
            if who.endswith("_b"):
                assert CANARY not in r.text and CANARY_SECRET not in r.text, f"{label} leaked alpha data: {r.text}"
                leaked = [m for m in markers if m in r.text and m not in str(r.request.url)]  # echoes are no leak
                assert not leaked, f"{label} leaked alpha's control plane: {r.text}"
            if who.startswith("member") and needs_admin(route):
                assert r.status_code == 403, f"{label}: {r.status_code}"
                continue
            if who in PROJECT_ADMINS and needs_server_admin(route):
                assert r.status_code == 403, f"{label}: {r.status_code}"
                continue
            if who == "admin_b" and "/admin/" in route.path and names_alpha(world, route, params):
                # Another project's key id is "not found"; a project named outright is forbidden.
                assert r.status_code == (404 if "{key_id}" in route.path else 403), f"{label}: {r.status_code}"
                continue
            assert r.status_code != 403, f"{label}: {r.text}"
            if who.endswith("_b"):
                if method == "GET" and route.param_convertors and "/admin/" not in route.path:
                    assert r.status_code == 404, f"{label}: {r.status_code} {r.text}"
        if who == "admin_b":
            assert alpha_state(world) == before, "project beta's admin changed alpha's keys or log"
        if who.endswith("_b"):
            # Nothing project beta's keys did touched alpha.
            control = world.tenancy.control
            alpha = world.tenancy.memory(control.project("alpha").id)
            assert alpha.get("secret-key", namespace="secret-ns") is not None
            assert alpha.session_get(world.ids["session"]).status == "active"
            assert alpha.task_get(world.ids["task"]).status == "pending"
            assert control.variable(control.project("alpha").id, "CANARY_VAR").value == CANARY_SECRET
            assert [m.id for m in alpha.history(world.ids["session"])] == [world.ids["message"]]
            assert alpha.summary(world.ids["session"]) is not None and alpha.profile(CANARY_USER) is not None
            assert alpha.checkpoint_get(world.ids["checkpoint"]).status == "paused"
            assert alpha.blobs.get(world.ids["blob"]).startswith(CANARY.encode())
    world.tenancy.close()


def test_x_api_key_header_works_too(world: World) -> None:
    r = world.client.get("/api/v1/namespaces", headers={"X-API-Key": world.keys["member_a"]})
    assert r.status_code == 200 and r.json() == ["secret-ns"]


def test_failed_authentication_is_rate_limited(tmp_path) -> None:
    world = build_world(tmp_path, max_auth_failures=3)
    with world.client:
        for _ in range(3):
            assert world.client.get("/api/v1/stats", headers=world.headers("unknown")).status_code == 401
        r = world.client.get("/api/v1/stats", headers=world.headers("unknown"))
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert_error_shape(r)
        assert world.client.post("/mcp", headers=world.headers("malformed"), json={}).status_code == 429
        # A valid key is never refused by the limiter, over REST or MCP.
        assert world.client.get("/api/v1/stats", headers=world.headers("admin_a")).status_code == 200
        assert world.client.post("/mcp", headers=world.headers("admin_a"), json={}).status_code != 429
    world.tenancy.close()


def test_health_and_openapi_need_no_key(world: World) -> None:
    assert world.client.get("/health").json()["status"] == "ok"
    schema = world.client.get("/openapi.json").json()
    assert "/api/v1/memories" in schema["paths"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
