"""Creating projects and users on the server administrator's pages: the same form, route and log."""

from __future__ import annotations

import pytest

from .conftest import csrf_of


@pytest.mark.parametrize(
    ("page", "name", "listed"),
    [("/admin/projects", "gamma", lambda c: [p.name for p in c.projects()]),
     ("/admin/users", "zoe", lambda c: [u.name for u in c.users()])],
)
def test_the_server_administrator_creates_by_name(world, browser_for, page, name, listed) -> None:
    client = browser_for("server_admin")
    form = client.get(page).text
    assert f'action="{page}"' in form and 'name="name"' in form
    response = client.post(page, data={"csrf": csrf_of(form), "name": f"  {name} "}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"{page}?notice=created"
    control = world.tenancy.control
    assert name in listed(control)  # the name is stripped
    operation = f"admin.{page.rsplit('/', 1)[1]}.create"
    logged = control.transactions(operation=operation)
    assert [(t.target, t.outcome) for t in logged] == [(name, "ok")]
    again = client.post(page, data={"csrf": csrf_of(form), "name": name}, follow_redirects=False)
    assert again.status_code == 409 and name in again.text
    assert [t.outcome for t in control.transactions(operation=operation)] == ["Conflict", "ok"]
