"""``engram stats|reindex|vacuum|prune``: looking after a store."""

from __future__ import annotations

import click

from engram.cli._common import _memory, json_option, state
from engram.cli._output import _show, emit_json, out, progress_bar


@click.command()
@json_option
def stats(as_json: bool) -> None:
    """Show what the store holds."""
    memory = _memory()
    s = memory.stats()
    if as_json:
        emit_json(s)
    else:
        _show(s, False)
        if memory.embedder_note:
            out.print(f"note: {memory.embedder_note}", markup=False)


@click.command()
@click.option("--namespace", "-n", default=None, help="Only this namespace (default: all).")
@json_option
def reindex(namespace: str | None, as_json: bool) -> None:
    """Embed entries and chat messages that lack a vector with the configured embedder.

    Reports how many of each were embedded (messages only without --namespace). After a
    change of embedder, drops the old model's vectors and re-embeds everything.
    """
    current = state()
    current.check_embedder = False
    with progress_bar("embedding", None) as advance:
        done = current.memory.reindex(namespace, progress=advance)
    entries, messages = done.entries, done.messages
    if as_json:
        emit_json({"embedded": int(done), "entries": entries, "messages": messages})
    else:
        out.print(
            f"embedded {entries} entr{'y' if entries == 1 else 'ies'} "
            f"and {messages} message{'' if messages == 1 else 's'}"
        )


@click.command()
def vacuum() -> None:
    """Reclaim space and optimize the indexes."""
    _memory().vacuum()
    out.print("vacuumed")


@click.command()
@click.option("--older-than-days", type=float, metavar="DAYS", help="Also remove messages and checkpoints created, and sessions ended, more than DAYS ago.")
@click.option("--keep-last", "keep_last_per_session", type=int, metavar="N", help="Keep only the newest N messages of each session.")
@click.option("--namespace", "-n", default=None, help="Only expired entries of this namespace (with no --session, conversations are left alone).")
@click.option("--session", "session_id", metavar="ID", help="Only records of this session (with no --namespace, entries are left alone).")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@json_option
def prune(
    older_than_days: float | None, keep_last_per_session: int | None, namespace: str | None,
    session_id: str | None, dry_run: bool, as_json: bool,
) -> None:
    """Remove expired entries, and old messages, sessions and checkpoints when asked."""
    report = _memory().prune(
        older_than_days=older_than_days, keep_last_per_session=keep_last_per_session,
        namespace=namespace, session_id=session_id, dry_run=dry_run,
    )
    if as_json:
        emit_json(report)
    else:
        verb = "would prune" if dry_run else "pruned"
        out.print(
            f"{verb} {report.expired_entries} expired entries, {report.messages} messages, "
            f"{report.sessions} ended sessions ({report.tasks} tasks), {report.checkpoints} checkpoints, "
            f"{report.blobs} old blobs no message attaches"
        )
