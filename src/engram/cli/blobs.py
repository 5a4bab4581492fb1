"""``engram blob put|get|ls|stat|rm|cleanup|stats``: files and large objects in the blob store."""

from __future__ import annotations

import shutil
import sys
from datetime import timedelta
from pathlib import Path

import click

from engram.cli._common import _memory, json_option, parse_json_option
from engram.cli._output import _show, _show_id, emit_json, out
from engram.errors import NotFound


@click.group()
def blob() -> None:
    """Put, get, list and clean up blobs (files, images, large objects)."""


@blob.command("put")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--mime", "mime_type", metavar="TYPE", help="Media type, e.g. image/png (default: guessed from the name).")
@click.option("--name", help="Name to keep with the blob (default: the file's name).")
@click.option("--source", type=click.Choice(["user", "tool", "system"]), default="user", show_default=True, help="Who produced it.")
@click.option("--metadata", metavar="JSON", help="Metadata as a JSON object.")
@json_option
def put(file: str, mime_type: str | None, name: str | None, source: str, metadata: str | None, as_json: bool) -> None:
    """Store FILE (- reads standard input) and print its id; the same bytes give the same id."""
    data = sys.stdin.buffer if file == "-" else Path(file)
    ref = _memory().blobs.put(
        data, mime_type=mime_type, name=name, source=source, metadata=parse_json_option("--metadata", metadata)
    )
    _show_id(ref, as_json)


@blob.command("get")
@click.argument("blob_id", metavar="ID")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: standard output).")
def get(blob_id: str, output: str | None) -> None:
    """Write the bytes of blob ID to standard output or to a file (-o)."""
    blobs = _memory().blobs
    if output is None:
        with blobs.open(blob_id) as stream:
            shutil.copyfileobj(stream, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
        return
    out.print(f"wrote {blobs.save(blob_id, output)}", markup=False)


@blob.command("ls")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@click.option("--offset", type=int, default=0, show_default=True, help="Skip this many first.")
@click.option("--source", type=click.Choice(["user", "tool", "system"]), help="Only blobs from this source.")
@click.option("--older-than-days", type=float, metavar="DAYS", help="Only blobs stored more than DAYS ago.")
@json_option
def ls(limit: int, offset: int, source: str | None, older_than_days: float | None, as_json: bool) -> None:
    """List blobs, newest first."""
    older = None if older_than_days is None else timedelta(days=older_than_days)
    refs = _memory().blobs.list(limit=limit, offset=offset, source=source, older_than=older)
    if as_json:
        emit_json(refs)
        return
    if not refs:
        out.print("no blobs")
    # One line each, the id whole (people copy it into `engram blob get`): a table would squeeze it.
    for ref in refs:
        out.print(
            f"{ref.id}  {ref.size:>10}  {ref.created_at:%Y-%m-%d %H:%M}  {ref.source:<6}  {ref.mime_type}  {ref.name or ''}",
            markup=False,
        )


@blob.command("stat")
@click.argument("blob_id", metavar="ID")
@json_option
def stat(blob_id: str, as_json: bool) -> None:
    """Show what is known of blob ID (size, type, name, hash, when)."""
    _show(_memory().blobs.stat(blob_id), as_json)


@blob.command("rm")
@click.argument("blob_id", metavar="ID")
def rm(blob_id: str) -> None:
    """Delete blob ID (messages that attach it keep a reference to nothing)."""
    blobs = _memory().blobs
    if not blobs.delete(blob_id):
        raise NotFound(f"no blob {blob_id}")
    out.print(f"deleted {blob_id}", markup=False)


@blob.command("cleanup")
@click.option("--older-than-days", type=float, metavar="DAYS", help="Age past which a blob goes (default: storage.blob_store.cleanup_after_days).")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@json_option
def cleanup(older_than_days: float | None, dry_run: bool, as_json: bool) -> None:
    """Remove old blobs that no message attaches any more."""
    count = _memory().blobs.cleanup(older_than_days, dry_run=dry_run)
    if as_json:
        emit_json({"removed": 0 if dry_run else count, "would_remove": count if dry_run else 0, "dry_run": dry_run})
    else:
        out.print(f"{'would remove' if dry_run else 'removed'} {count} blob{'' if count == 1 else 's'}")


@blob.command("stats")
@json_option
def stats(as_json: bool) -> None:
    """Show how many blobs there are, their size, the backend and where it keeps them."""
    _show(_memory().blobs.stats(), as_json)
