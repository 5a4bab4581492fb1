"""The server's commands: ``engram serve``, ``engram mcp``, and the control plane
(``project``, ``key``, ``user``, ``secrets``, ``transactions``).

They work on the same files as the server: the control database beside the
store named by ``--db`` / ``ENGRAM_DATABASE_URL``. Errors follow the root group's
rules (one line, exit 2 for bad input, 1 otherwise). This module is imported only
when one of these commands runs; the server never imports the CLI.
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import TYPE_CHECKING, Any

import click

from engram.cli._common import confirm, json_option, state, yes_option
from engram.cli._output import _done, _records, emit_json, err, out
from engram.errors import ConfigError, MissingDependency
from engram.server.control import DEFAULT_PROJECT
from engram.server.models import ROLES
from engram.server.tenancy import Tenancy
from engram.stores._files import location
from engram.stores.control_base import TransactionQuery
from engram.stores.registry import scheme_of

if TYPE_CHECKING:
    from engram.config import Settings


def _settings(**overrides: Any) -> Settings:
    return state().settings(**overrides)


def _tenancy() -> Tenancy:
    ctx = click.get_current_context()
    tenancy = Tenancy(_settings())
    ctx.call_on_close(tenancy.close)
    return tenancy


WORKER_HEALTHCHECK_S = 30

# -- serve and mcp --------------------------------------------------------------------
@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told).")
@click.option("--port", default=8420, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--forwarded-allow-ips", metavar="IPS", default=None,
              help="Proxies trusted to say who the client is (X-Forwarded-For / Forwarded): comma-separated "
                   "addresses or networks, or '*' [default: none, or ENGRAM_FORWARDED_ALLOW_IPS].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes sharing the port (sqlite:// or postgresql://; each opens its own pools).")
def serve(host: str, port: int, log_level: str, forwarded_allow_ips: str | None, workers: int) -> None:
    """Run the REST API and MCP server (needs pip install 'engram[server]').

    The first start creates the server administrator's key and prints it once
    (or registers ENGRAM_ADMIN_KEY). Data lives beside the store named by --db.
    With --workers N, N processes serve one port; several servers on one
    PostgreSQL database behave as one (see docs/deploying.md).
    """
    try:
        import uvicorn

        from engram.server.app import create_app
    except ImportError as exc:
        raise MissingDependency(f"engram serve needs {exc.name}: pip install 'engram[server]'") from exc
    settings = _settings(forwarded_allow_ips=forwarded_allow_ips)
    if workers > 1 and scheme_of(settings.database_url) == "memory":
        raise ConfigError("memory:// lives in one process: --workers needs a sqlite:// or postgresql:// database")
    tenancy = Tenancy(settings)
    try:
        admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        created = tenancy.control.bootstrap(admin_key)
        app = create_app(tenancy=tenancy)
    except BaseException:
        tenancy.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}"
    out.print(f"engram server on {url}  (store: {location(settings.database_url)})", markup=False)
    out.print(f"API docs:   {url}/docs   OpenAPI: {url}/openapi.json   MCP: {url}/mcp", markup=False)
    out.print(f"Dashboard:  {url}/   (sign in with an API key)", markup=False)
    if created is not None:
        out.print("\nFirst start: the server administrator's key was created. It is shown only this once:\n")
        out.print(f"    {created.key}\n", markup=False)
        out.print('Use it as "Authorization: Bearer <key>" or "X-API-Key: <key>".\n')
    elif admin_key is None:
        out.print(_mint_hint(state().db), markup=False)
    if not _is_loopback(host):
        err.print(f"[yellow]warning:[/yellow] listening on {host}, reachable from other machines", markup=True)
    # uvicorn and the app must agree on whom to believe: uvicorn's own default trusts
    # 127.0.0.1 (or $FORWARDED_ALLOW_IPS), which would let any local client name itself.
    allow = settings.forwarded_allow_ips
    proxy = {"proxy_headers": bool(allow), "forwarded_allow_ips": allow or ""}
    if workers > 1:
        tenancy.close()  # each worker opens its own; this process only watches them
        _export_settings(forwarded_allow_ips)
        out.print(f"{workers} worker processes", markup=False)
        # Each worker builds the app from the settings as this process read them: the
        # options given here travel as the ENGRAM_* variables every engram reads.
        # A worker answers uvicorn's health check only once its interpreter is up: on a loaded
        # machine that takes longer than uvicorn's 5 s, and it would kill healthy workers.
        uvicorn.run("engram.server.app:create_app", factory=True, workers=workers, host=host, port=port,
                    log_level=log_level, timeout_worker_healthcheck=WORKER_HEALTHCHECK_S, **proxy)
        return
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, **proxy)
    finally:
        tenancy.close()


def _export_settings(forwarded_allow_ips: str | None) -> None:
    """Put this command's --db, --config and --forwarded-allow-ips where worker processes read settings."""
    import os

    given = {"ENGRAM_DATABASE_URL": state().db, "ENGRAM_CONFIG": state().config,
             "ENGRAM_FORWARDED_ALLOW_IPS": forwarded_allow_ips}
    os.environ.update({name: value for name, value in given.items() if value is not None})


def _mint_hint(db: str | None) -> str:
    """What a start after the first says: the admin key is not shown again, and how to get another."""
    where = f" --db {shlex.quote(db)}" if db else ""
    return (
        "An admin key exists (keys are shown only when created). To mint another: "
        f"engram{where} key create --role server_admin"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command()
@click.option("--project", metavar="NAME", help="Serve this project's store (default: the store named by --db).")
def mcp(project: str | None) -> None:
    """Serve the MCP tools over stdio (for agents that start engram as a subprocess)."""
    try:
        from engram.server.mcp import run_stdio
    except ImportError as exc:
        raise MissingDependency(f"engram mcp needs {exc.name}: pip install 'engram[server]'") from exc
    if project is None:
        from engram.memory import Memory

        with Memory(settings=_settings()) as memory:
            run_stdio(memory)
        return
    tenancy = _tenancy()
    run_stdio(tenancy.memory(tenancy.control.project(project).id))


# -- projects ----------------------------------------------------------------------------
@click.group()
def project() -> None:
    """Create and list projects (each has its own store, keys and variables)."""


@project.command("create")
@click.argument("name")
@json_option
def project_create(name: str, as_json: bool) -> None:
    """Create project NAME."""
    created = _tenancy().control.create_project(name)
    _done(created, as_json, f"created project {created.name} (id {created.id})")


@project.command("list")
@json_option
def project_list(as_json: bool) -> None:
    """List projects."""
    control = _tenancy().control
    control.ensure_default_project()
    _records(control.projects(), ["name", "id", "created_at"], as_json, "no projects")


# -- keys ----------------------------------------------------------------------------------
@click.group()
def key() -> None:
    """Create, list and revoke API keys."""


@key.command("create")
@click.option("--project", "project_name", default=DEFAULT_PROJECT, show_default=True, help="The key's project.")
@click.option("--role", type=click.Choice(list(ROLES)), default="member", show_default=True,
              help="member: its project's data; admin: also its project's keys, variables and log; "
                   "server_admin: every project, users and the whole log (project default).")
@click.option("--user", help="The user the key is issued to.")
@click.option("--name", help="A label for the key.")
@click.option("--expires-in", "expires_in", type=float, metavar="DAYS", help="Expire the key after DAYS days.")
@json_option
def key_create(project_name: str, role: str, user: str | None, name: str | None, expires_in: float | None,
               as_json: bool) -> None:
    """Create an API key and print it (the only time it is shown)."""
    control = _tenancy().control
    if project_name == DEFAULT_PROJECT:
        control.ensure_default_project()
    created = control.create_key(project_name, role, user=user, name=name, expires_in_days=expires_in)
    if as_json:
        emit_json(created)
        return
    out.print(f"created {created.role} key {created.prefix} for project {created.project}; it is shown only this once:")
    click.echo(created.key)


@key.command("list")
@click.option("--project", "project_name", help="Only keys of this project.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@json_option
def key_list(project_name: str | None, include_revoked: bool, as_json: bool) -> None:
    """List API keys (prefixes only; keys are never stored)."""
    keys = _tenancy().control.keys(project_name, include_revoked=include_revoked)
    _records(keys, ["prefix", "project", "role", "user", "name", "expires_at", "revoked_at"], as_json, "no keys")


@key.command("revoke")
@click.argument("key_id")
@json_option
def key_revoke(key_id: str, as_json: bool) -> None:
    """Revoke the key with KEY_ID (its id or prefix); it stops working at once."""
    revoked = _tenancy().control.revoke_key(key_id)
    _done(revoked, as_json, f"revoked {revoked.prefix}")


# -- users -----------------------------------------------------------------------------------
@click.group()
def user() -> None:
    """Create, list and delete users."""


@user.command("create")
@click.argument("name")
@json_option
def user_create(name: str, as_json: bool) -> None:
    """Create user NAME."""
    created = _tenancy().control.create_user(name)
    _done(created, as_json, f"created user {created.name} (id {created.id})")


@user.command("list")
@json_option
def user_list(as_json: bool) -> None:
    """List users."""
    _records(_tenancy().control.users(), ["name", "id", "created_at"], as_json, "no users")


@user.command("delete")
@click.argument("name")
@yes_option("the user and revoke their keys")
def user_delete(name: str, yes: bool) -> None:
    """Delete user NAME and revoke their keys (asks first unless --yes)."""
    confirm(f"delete user {name!r} and revoke their keys", yes)
    revoked = _tenancy().control.delete_user(name)
    out.print(f"deleted user {name}; revoked {revoked} key{'' if revoked == 1 else 's'}")


# -- secrets ------------------------------------------------------------------------------------
@click.group()
def secrets() -> None:
    """Manage the key that encrypts variables."""


@secrets.command("rotate")
@json_option
def secrets_rotate(as_json: bool) -> None:
    """Re-encrypt every variable of every project under a new key; no value is ever lost.

    \b
    Key file (engram-secret.key beside the database, the default):
      the file gets a new key, every value is re-encrypted in one database
      transaction, and the old key is dropped only after it commits. Running
      servers pick up the new key by themselves; nothing else to do.
    ENGRAM_SECRET_KEY with one key:
      nothing is changed. A new key is printed; put it first, keeping the old
      one after it (ENGRAM_SECRET_KEY=NEW,OLD) on every server and restart them,
      then run this command again with that setting.
    ENGRAM_SECRET_KEY with several keys (NEW,OLD,...):
      every value is re-encrypted under the first key. Afterwards the other
      keys are no longer needed; drop them once every server runs with NEW first.
    """
    rotation = _tenancy().control.rotate_secrets()
    new_key = None if rotation.new_key is None else rotation.new_key.decode("ascii")
    if as_json:
        emit_json({"rotated": rotation.rotated, "source": rotation.source, "new_key": new_key})
        return
    if rotation.source == "staged":
        out.print("ENGRAM_SECRET_KEY holds one key: nothing was re-encrypted (servers started with it could not "
                  "read values under a key they lack). A new key, shown only this once:")
        click.echo(new_key)
        out.print("1. on every server set ENGRAM_SECRET_KEY to the new key, a comma, then the current key, and restart;\n"
                  "2. run `engram secrets rotate` again with that setting to re-encrypt every value under the new key;\n"
                  "3. then the old key may be dropped from ENGRAM_SECRET_KEY.")
        return
    plural = "" if rotation.rotated == 1 else "s"
    if rotation.source == "setting":
        out.print(f"re-encrypted {rotation.rotated} variable{plural} under the first key of ENGRAM_SECRET_KEY; "
                  "the other keys are no longer needed once every server runs with that key first")
    elif rotation.source == "file":
        out.print(f"re-encrypted {rotation.rotated} variable{plural} under a new key; the key file holds only the new "
                  "key, and running servers pick it up by themselves")
    else:
        out.print(f"re-encrypted {rotation.rotated} variable{plural} under a new key (this process only: memory://)")


# -- transaction log ---------------------------------------------------------------------------------
@click.group()
def transactions() -> None:
    """Read and prune the transaction log of writes through the server."""


@transactions.command("list")
@click.option("--project", "project_name", help="Only this project.")
@click.option("--operation", help="Only this operation, e.g. memories.store.")
@click.option("--outcome", help="Only this outcome: ok or an error type.")
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0, show_default=True)
@json_option
def transactions_list(project_name: str | None, operation: str | None, outcome: str | None, limit: int,
                      offset: int, as_json: bool) -> None:
    """List the log, newest first."""
    query = TransactionQuery(operation=operation, outcome=outcome, limit=limit, offset=offset)
    records = _tenancy().control.transactions(query, project=project_name)
    _records(records, ["at", "project", "key_prefix", "operation", "target", "outcome", "duration_ms"], as_json,
             "no transactions")


@transactions.command("prune")
@click.option("--older-than-days", type=float, required=True, help="Delete records older than this.")
@json_option
def transactions_prune(older_than_days: float, as_json: bool) -> None:
    """Delete log records older than --older-than-days (retention)."""
    pruned = _tenancy().control.prune_transactions(older_than_days)
    _done({"pruned": pruned}, as_json, f"pruned {pruned} transaction record{'' if pruned == 1 else 's'}")
