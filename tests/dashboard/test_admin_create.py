"""Changes by name on the administration pages (create a project or user; delete a user or variable):
each goes through its confirm page or form, is logged under the REST route's name, and redirects."""

from __future__ import annotations

import pytest
from engram.stores.control_base import TransactionQuery

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
    logged = control.transactions(TransactionQuery(operation=operation))
    assert [(t.target, t.outcome) for t in logged] == [(name, "ok")]
    again = client.post(page, data={"csrf": csrf_of(form), "name": name}, follow_redirects=False)
    assert again.status_code == 409 and name in again.text
    assert [t.outcome for t in control.transactions(TransactionQuery(operation=operation))] == ["Conflict", "ok"]


@pytest.mark.parametrize(
    ("who", "page", "name", "operation"),
    [("server_admin", "/admin/users", "zoe", "admin.users.delete"),
     ("admin_a", "/variables", "CANARY_VAR", "variables.delete")],
)
def test_deleting_by_name_through_the_confirm_page(world, browser_for, who, page, name, operation) -> None:
    control = world.tenancy.control
    if page == "/admin/users":
        control.create_user(name)
    client = browser_for(who)
    confirm = client.get(f"{page}/delete?name={name}")
    assert confirm.status_code == 200 and f'value="{name}"' in confirm.text
    response = client.post(f"{page}/delete", data={"csrf": csrf_of(confirm.text), "name": name},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"{page}?notice=deleted"
    if page == "/admin/users":
        assert name not in [u.name for u in control.users()]
    else:
        assert name not in [v.name for v in control.variables(control.project("alpha").id)]
    again = client.post(f"{page}/delete", data={"csrf": csrf_of(confirm.text), "name": name},
                        follow_redirects=False)
    assert again.status_code == 404
    assert [(t.target, t.outcome) for t in control.transactions(TransactionQuery(operation=operation))] == [
        (name, "NotFound"), (name, "ok")
    ]
