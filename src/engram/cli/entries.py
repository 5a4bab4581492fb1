"""``engram store|get|delete|delete-namespace|list|namespaces``: entries by key."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from engram.cli._common import (
    _memory,
    confirm,
    json_option,
    namespace_option,
    parse_json_option,
    yes_option,
)
from engram.cli._output import _done, _entries_table, emit_json, out
from engram.errors import InvalidInput, NotFound
from engram.validation import MAX_TTL_SECONDS


def _print_entry(entry: Any) -> None:
    out.print(f"[bold]{entry.namespace}/{entry.key}[/bold]  (id {entry.id}, updated {entry.updated_at:%Y-%m-%d %H:%M:%S})", markup=True)
    if entry.metadata:
        out.print(f"metadata: {json.dumps(entry.metadata, ensure_ascii=False)}")
    if entry.expires_at:
        out.print(f"expires: {entry.expires_at:%Y-%m-%d %H:%M:%S}")
    if entry.context:
        out.print(f"context: {entry.context}", markup=False)
    out.print(entry.content, markup=False)


def _ttl_seconds(value: float | None) -> float | None:
    # Said here in the option's own name: the library's "ttl" message does not name --ttl.
    if value is not None and not 0 < value <= MAX_TTL_SECONDS:
        raise InvalidInput(
            f"--ttl must be a positive number of seconds (more than 0, at most {MAX_TTL_SECONDS}, 100 years), "
            f"got {value:g}; omit --ttl for no expiry"
        )
    return value


@click.command()
@click.argument("key")
@click.argument("content")
@namespace_option
@click.option("--metadata", metavar="JSON", help='Metadata as a JSON object, e.g. \'{"topic": "food"}\'.')
@click.option(
    "--ttl", type=float, metavar="SECONDS", callback=lambda _c, _p, v: _ttl_seconds(v),
    help=f"Expire the entry after this many seconds (more than 0, at most {MAX_TTL_SECONDS}); omit it for no expiry.",
)
@click.option(
    "--context", metavar="TEXT",
    help="What surrounds the memory (a title, a date, the turns before it): embedded ahead of CONTENT and stored as its context.",
)
@json_option
def store(
    key: str, content: str, namespace: str, metadata: str | None, ttl: float | None, context: str | None, as_json: bool
) -> None:
    """Store (upsert) CONTENT under KEY. Use - as CONTENT to read standard input."""
    if content == "-":
        content = sys.stdin.read()
    entry = _memory().store(
        key, content, namespace=namespace, metadata=parse_json_option("--metadata", metadata), ttl=ttl, context=context
    )
    _done(entry, as_json, f"stored {entry.namespace}/{entry.key} (id {entry.id})")


@click.command()
@click.argument("key")
@namespace_option
@json_option
def get(key: str, namespace: str, as_json: bool) -> None:
    """Print the entry stored under KEY."""
    entry = _memory().get(key, namespace=namespace)
    if entry is None:
        raise NotFound(f"no entry {key!r} in namespace {namespace!r}")
    if as_json:
        emit_json(entry)
    else:
        _print_entry(entry)


@click.command()
@click.argument("key")
@namespace_option
def delete(key: str, namespace: str) -> None:
    """Delete the entry stored under KEY."""
    if not _memory().delete(key, namespace=namespace):
        raise NotFound(f"no entry {key!r} in namespace {namespace!r}")
    out.print(f"deleted {namespace}/{key}")


@click.command("delete-namespace")
@click.argument("namespace")
@yes_option("the namespace's entries")
def delete_namespace(namespace: str, yes: bool) -> None:
    """Delete every entry of NAMESPACE (asks first unless --yes)."""
    confirm(f"delete every entry of namespace {namespace!r}", yes)
    out.print(f"deleted {_memory().delete_namespace(namespace)} entries from {namespace}")


@click.command("list")
@click.option("--namespace", "-n", default=None, help="Only this namespace (default: all).")
@click.option("--limit", default=20, show_default=True, help="How many entries.")
@click.option("--offset", default=0, show_default=True, help="Skip this many entries first.")
@click.option("--metadata", metavar="JSON", help="Only entries whose metadata has these values.")
@click.option("--key-prefix", help="Only keys starting with this.")
@click.option("--order", type=click.Choice(["updated_desc", "updated_asc"]), default="updated_desc", show_default=True,
              help="By update time: newest or oldest first.")
@json_option
def list_(
    namespace: str | None, limit: int, offset: int, metadata: str | None, key_prefix: str | None, order: str,
    as_json: bool,
) -> None:
    """List entries, newest updated first (or --order updated_asc)."""
    entries = _memory().list(
        namespace=namespace, limit=limit, offset=offset,
        metadata=parse_json_option("--metadata", metadata), key_prefix=key_prefix, order=order,
    )
    if as_json:
        emit_json(entries)
    elif not entries:
        out.print("no entries")
    else:
        out.print(_entries_table(entries))


@click.command()
@json_option
def namespaces(as_json: bool) -> None:
    """List namespaces that hold entries."""
    names = _memory().namespaces()
    if as_json:
        emit_json(names)
    else:
        for name in names:
            out.print(name, markup=False)
