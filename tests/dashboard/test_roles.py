"""The dashboard's reach is the API's: members their project's data, project admins their project, the server administrator everything."""

from __future__ import annotations

import pytest

from server.conftest import CANARY, CANARY_SECRET

ADMIN_PAGES = ("/admin/keys", "/admin/log")
SERVER_ADMIN_PAGES = ("/admin/projects", "/admin/users")


@pytest.mark.parametrize("path", ADMIN_PAGES + SERVER_ADMIN_PAGES)
def test_a_member_cannot_open_admin_pages(browser_for, path):
    response = browser_for("member_a").get(path)
    assert response.status_code == 403
    assert "admin" in response.text and "<h1>PermissionDenied</h1>" in response.text


@pytest.mark.parametrize("path", SERVER_ADMIN_PAGES)
def test_a_project_admin_cannot_open_server_admin_pages(browser_for, path):
    assert browser_for("admin_a").get(path).status_code == 403


def test_admin_links_follow_the_role(browser_for):
    member = browser_for("member_a").get("/").text
    assert 'href="/admin/keys"' not in member and 'href="/admin/projects"' not in member
    admin = browser_for("admin_a").get("/").text
    assert 'href="/admin/keys"' in admin and 'href="/admin/projects"' not in admin
    server = browser_for("server_admin").get("/").text
    assert 'href="/admin/projects"' in server and 'href="/admin/users"' in server


def test_a_member_posting_to_an_admin_form_changes_nothing(world, browser_for):
    from .conftest import csrf_of

    client = browser_for("member_a")
    token = csrf_of(client.get("/").text)
    assert client.post("/admin/keys", data={"csrf": token, "role": "admin"}).status_code == 403
    assert client.post("/variables", data={"csrf": token, "name": "X", "value": "y"}).status_code == 403
    assert client.post("/admin/projects", data={"csrf": token, "name": "gamma"}).status_code == 403
    assert "gamma" not in [p.name for p in world.tenancy.control.projects()]
    assert [v.name for v in world.tenancy.control.variables(world.tenancy.control.project("alpha").id)] == ["CANARY_VAR"]


def test_a_project_admin_sees_only_its_project(world, browser_for):
    client = browser_for("admin_b")
    keys = client.get("/admin/keys").text
    assert "alpha" not in keys and "beta" in keys
    assert client.get("/admin/keys?project=alpha").status_code == 403
    assert client.get("/admin/log?project=alpha").status_code == 403
    for path in ("/", "/namespaces", "/sessions", "/variables"):
        assert CANARY not in client.get(path).text, path
    assert "0 hits" in client.get("/search?q=" + CANARY).text
    assert client.get(f"/session?id={world.ids['session']}").status_code == 404
    assert client.get(f"/checkpoint?id={world.ids['checkpoint']}").status_code == 404


def test_a_project_admin_cannot_revoke_another_projects_key(world, browser_for):
    from .conftest import csrf_of

    client = browser_for("admin_b")
    alpha_key = world.keys["member_a"].split("_")[1]
    assert client.get(f"/admin/keys/revoke?id={alpha_key}").status_code == 404
    response = client.post("/admin/keys/revoke", data={"csrf": csrf_of(client.get("/").text), "id": alpha_key})
    assert response.status_code == 404
    assert world.tenancy.control.key(alpha_key).revoked_at is None


def test_the_server_administrator_sees_every_project(world, browser_for):
    client = browser_for("server_admin")
    projects = client.get("/admin/projects").text
    assert "alpha" in projects and "beta" in projects
    keys = client.get("/admin/keys").text
    assert "alpha" in keys and "beta" in keys
    assert client.get("/admin/keys?project=alpha").status_code == 200


def test_variables_values_only_on_an_explicit_reveal(world, browser_for):
    from .conftest import csrf_of

    client = browser_for("member_a")
    page = client.get("/variables")
    assert "CANARY_VAR" in page.text and CANARY_SECRET not in page.text
    revealed = client.post("/variables/reveal", data={"csrf": csrf_of(page.text), "name": "CANARY_VAR"})
    assert revealed.status_code == 200 and CANARY_SECRET in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    assert CANARY_SECRET not in client.get("/variables").text
    forged = client.post("/variables/reveal", data={"name": "CANARY_VAR"})
    assert forged.status_code == 403 and CANARY_SECRET not in forged.text
