"""The ``engram`` command: a thin layer over ``Memory`` (parse, call, render).

Errors print one line to stderr and exit 2 for bad input, 1 for anything else.
Every read command takes ``--json`` and prints the field names of engram.models.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engram.config import load_settings
from engram.errors import EngramError, InvalidInput, NotFound
from engram.memory import Memory
from engram.stores._files import location
from engram.validation import MAX_TTL_SECONDS, json_text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Context:
    def __init__(self, db: str | None, config: str | None):
        self.db = db
        self.config = config
        self._memory: Memory | None = None
        self.check_embedder = True  # reindex opens a store whose vectors may come from another model

    @property
    def memory(self) -> Memory:
        if self._memory is None:
            self._memory = Memory(
                settings=load_settings(self.config, database_url=self.db), check_embedder=self.check_embedder
            )
        return self._memory

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()


def _to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(_to_json(value), ensure_ascii=False, indent=2))


def parse_json_option(name: str, text: str | None) -> Any:
    if text is None:
        return None
    return json_text(name, text)


def parse_datetime_option(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be an ISO date or time such as 2026-01-31 or 2026-01-31T12:00:00Z") from exc
    return dt if dt.tzinfo else dt.astimezone()


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
namespace_option = click.option("--namespace", "-n", default="default", show_default=True, help="Namespace of the entry.")


def _memory() -> Memory:
    return click.get_current_context().find_object(_Context).memory


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def yes_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--yes`` for a command that deletes: its help says what it skips."""
    return click.option(
        "--yes", is_flag=True,
        help=f"Delete {what} without asking. Without it, the command asks for confirmation on the terminal "
        "and fails (does not wait) when standard input is not a terminal.",
    )


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` unless ``--yes`` was given; with no terminal to ask on, fail at once.

    Raises:
        InvalidInput: no ``--yes`` and standard input is not a terminal (a
            script or a pipe would otherwise hang on, or be read as, the answer).
    """
    if yes:
        return
    if sys.stdin is None or not sys.stdin.isatty():
        raise InvalidInput(f"{question} needs a confirmation and standard input is not a terminal: add --yes")
    click.confirm(f"{question[0].upper()}{question[1:]}?", abort=True)


class EngramGroup(click.Group):
    """Turns engram errors into one line on stderr and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EngramError as exc:
            err.print(f"[red]error:[/red] {exc.message}", markup=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the CLI promises no tracebacks
            err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", markup=True)
            sys.exit(1)


@click.group(cls=EngramGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", metavar="URL", help="Database URL (default: ENGRAM_DATABASE_URL, the config file, or the user data directory).")
@click.option("--config", metavar="FILE", type=click.Path(dir_okay=False), help="YAML config file (default: ENGRAM_CONFIG).")
@click.version_option(package_name="engram")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config: str | None) -> None:
    """engram: persistent memory for AI agents.

    Store, search and organise memories, sessions and tasks from the shell.
    Settings come from options, then ENGRAM_* variables, then the config file.
    """
    state = _Context(db, config)
    ctx.obj = state
    ctx.call_on_close(state.close)


# -- entries ---------------------------------------------------------------------
def _print_entry(entry: Any) -> None:
    out.print(f"[bold]{entry.namespace}/{entry.key}[/bold]  (id {entry.id}, updated {entry.updated_at:%Y-%m-%d %H:%M:%S})", markup=True)
    if entry.metadata:
        out.print(f"metadata: {json.dumps(entry.metadata, ensure_ascii=False)}")
    if entry.expires_at:
        out.print(f"expires: {entry.expires_at:%Y-%m-%d %H:%M:%S}")
    out.print(entry.content, markup=False)


def _entries_table(entries: list[Any], score: list[float] | None = None) -> Table:
    table = Table(show_lines=False)
    table.add_column("namespace", overflow="fold")  # folded, not cut: people copy them into `engram get`
    table.add_column("key", overflow="fold")
    if score is not None:
        table.add_column("score", justify="right")
    table.add_column("content", overflow="fold")
    table.add_column("updated")
    for i, e in enumerate(entries):
        content = e.content if len(e.content) <= 120 else e.content[:117] + "..."
        row = [e.namespace, e.key] + ([f"{score[i]:.3f}"] if score is not None else [])
        table.add_row(*row, content, f"{e.updated_at:%Y-%m-%d %H:%M}")
    return table


def _ttl_seconds(value: float | None) -> float | None:
    # Said here in the option's own name: the library's "ttl" message does not name --ttl.
    if value is not None and not 0 < value <= MAX_TTL_SECONDS:
        raise InvalidInput(
            f"--ttl must be a positive number of seconds (more than 0, at most {MAX_TTL_SECONDS}, 100 years), "
            f"got {value:g}; omit --ttl for no expiry"
        )
    return value


@cli.command()
@click.argument("key")
@click.argument("content")
@namespace_option
@click.option("--metadata", metavar="JSON", help='Metadata as a JSON object, e.g. \'{"topic": "food"}\'.')
@click.option(
    "--ttl", type=float, metavar="SECONDS", callback=lambda _c, _p, v: _ttl_seconds(v),
    help=f"Expire the entry after this many seconds (more than 0, at most {MAX_TTL_SECONDS}); omit it for no expiry.",
)
@json_option
def store(key: str, content: str, namespace: str, metadata: str | None, ttl: float | None, as_json: bool) -> None:
    """Store (upsert) CONTENT under KEY. Use - as CONTENT to read standard input."""
    if content == "-":
        content = sys.stdin.read()
    entry = _memory().store(key, content, namespace=namespace, metadata=parse_json_option("--metadata", metadata), ttl=ttl)
    if as_json:
        emit_json(entry)
    else:
        out.print(f"stored {entry.namespace}/{entry.key} (id {entry.id})")


@cli.command()
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


@cli.command()
@click.argument("key")
@namespace_option
def delete(key: str, namespace: str) -> None:
    """Delete the entry stored under KEY."""
    if not _memory().delete(key, namespace=namespace):
        raise NotFound(f"no entry {key!r} in namespace {namespace!r}")
    out.print(f"deleted {namespace}/{key}")


@cli.command("delete-namespace")
@click.argument("namespace")
@yes_option("the namespace's entries")
def delete_namespace(namespace: str, yes: bool) -> None:
    """Delete every entry of NAMESPACE (asks first unless --yes)."""
    confirm(f"delete every entry of namespace {namespace!r}", yes)
    out.print(f"deleted {_memory().delete_namespace(namespace)} entries from {namespace}")


@cli.command("list")
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


@cli.command()
@json_option
def namespaces(as_json: bool) -> None:
    """List namespaces that hold entries."""
    names = _memory().namespaces()
    if as_json:
        emit_json(names)
    else:
        for name in names:
            out.print(name, markup=False)


@cli.command()
@click.argument("query")
@click.option("--namespace", "-n", default=None, help="Only this namespace (default: all).")
@click.option("--limit", default=10, show_default=True, help="How many results.")
@click.option("--metadata", metavar="JSON", help="Only entries whose metadata has these values.")
@click.option(
    "--mode", type=click.Choice(["auto", "fts", "vector", "hybrid"]), default="auto", show_default=True,
    help="fts: words; vector: meaning; hybrid: both fused; auto: hybrid where embeddings exist, else fts.",
)
@click.option("--threshold", type=float, metavar="X", help="Drop vector matches with cosine similarity below X (0..1).")
@json_option
def search(
    query: str, namespace: str | None, limit: int, metadata: str | None, mode: str, threshold: float | None, as_json: bool
) -> None:
    """Search by words and meaning. Query language: words, "exact phrase", a OR b, a AND b, prefix*, -excluded, (groups)."""
    result = _memory().search(
        query, namespace=namespace, limit=limit, metadata=parse_json_option("--metadata", metadata),
        mode=mode, threshold=threshold,
    )
    if as_json:
        emit_json(result)
    elif not result.results:
        out.print("no matches")
    else:
        out.print(_entries_table([h.entry for h in result.results], [h.score for h in result.results]))


# -- sessions ----------------------------------------------------------------------
@cli.group()
def session() -> None:
    """Start, end and list agent sessions."""


def _show(record: Any, as_json: bool) -> None:
    if as_json:
        emit_json(record)
        return
    for name, value in record.model_dump(mode="json").items():
        if value is not None:
            out.print(f"{name}: {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}", markup=False)


# Columns people copy into the next command: shown whole on one line, never cut with "…".
_IDENTIFIERS = frozenset({"id", "prefix", "key_prefix", "session_id"})


def _table(records: list[Any], columns: list[str]) -> Table:
    """A table of ``columns`` of ``records``; identifiers stay whole, other cells fold onto more lines."""
    rows = [r.model_dump(mode="json") for r in records]
    cells = [[("" if data[c] is None else str(data[c]))[:60] for c in columns] for data in rows]
    table = Table()
    for i, c in enumerate(columns):
        if c in _IDENTIFIERS:
            table.add_column(c, no_wrap=True, min_width=max((len(row[i]) for row in cells), default=0))
        else:
            table.add_column(c, overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


@session.command("start")
@click.option("--metadata", metavar="JSON", help="Metadata as a JSON object.")
@click.option("--user-id", help="The user whose session this is.")
@click.option("--agent-id", help="The agent that runs it.")
@json_option
def session_start(metadata: str | None, user_id: str | None, agent_id: str | None, as_json: bool) -> None:
    """Start a session and print its id."""
    s = _memory().session_start(parse_json_option("--metadata", metadata), user_id=user_id, agent_id=agent_id)
    if as_json:
        emit_json(s)
    else:
        out.print(s.id)


@session.command("end")
@click.argument("session_id")
@click.option("--status", type=click.Choice(["ended", "error"]), default="ended", show_default=True)
@json_option
def session_end(session_id: str, status: str, as_json: bool) -> None:
    """End a session as ended or error."""
    _show(_memory().session_end(session_id, status=status), as_json)


@session.command("get")
@click.argument("session_id")
@json_option
def session_get(session_id: str, as_json: bool) -> None:
    """Show one session."""
    s = _memory().session_get(session_id)
    if s is None:
        raise NotFound(f"session {session_id} does not exist")
    _show(s, as_json)


@session.command("list")
@click.option("--status", type=click.Choice(["active", "ended", "error"]), help="Only sessions with this status.")
@click.option("--ended-before", metavar="ISO-TIME", help="Only sessions that ended before this time.")
@click.option("--user-id", help="Only sessions of this user.")
@click.option("--agent-id", help="Only sessions of this agent.")
@click.option("--sort", type=click.Choice(["newest", "oldest"]), default="newest", show_default=True,
              help="By start time: newest or oldest first.")
@click.option("--limit", default=20, show_default=True)
@click.option("--offset", default=0, show_default=True)
@json_option
def session_list(
    status: str | None, ended_before: str | None, user_id: str | None, agent_id: str | None, sort: str,
    limit: int, offset: int, as_json: bool,
) -> None:
    """List sessions, newest first (or --sort oldest), optionally of one user or agent."""
    found = _memory().sessions(
        status=status, ended_before=parse_datetime_option("--ended-before", ended_before), limit=limit, offset=offset,
        user_id=user_id, agent_id=agent_id, sort=sort,
    )
    if as_json:
        emit_json(found)
    else:
        out.print(_table(found, ["id", "status", "user_id", "agent_id", "started_at", "ended_at"]))


# -- tasks -------------------------------------------------------------------------
@cli.group()
def task() -> None:
    """Create, update and list agent tasks."""


def _json_or_text(text: str | None) -> Any:
    """Task input/output: JSON when it parses, else the text itself."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@task.command("create")
@click.argument("agent_type")
@click.argument("input")
@click.option("--session", "session_id", metavar="ID", help="The session the task belongs to.")
@json_option
def task_create(agent_type: str, input: str, session_id: str | None, as_json: bool) -> None:
    """Create a pending task for AGENT_TYPE with INPUT (JSON or text)."""
    t = _memory().task_create(agent_type, _json_or_text(input), session_id=session_id)
    if as_json:
        emit_json(t)
    else:
        out.print(t.id)


@task.command("update")
@click.argument("task_id")
@click.argument("status", type=click.Choice(["pending", "running", "completed", "failed"]))
@click.option("--output", help="Output of the task (JSON or text).")
@json_option
def task_update(task_id: str, status: str, output: str | None, as_json: bool) -> None:
    """Move a task to STATUS."""
    _show(_memory().task_update(task_id, status, output=_json_or_text(output)), as_json)


@task.command("get")
@click.argument("task_id")
@json_option
def task_get(task_id: str, as_json: bool) -> None:
    """Show one task."""
    t = _memory().task_get(task_id)
    if t is None:
        raise NotFound(f"task {task_id} does not exist")
    _show(t, as_json)


@task.command("list")
@click.option("--session", "session_id", metavar="ID", help="Only tasks of this session.")
@click.option("--status", type=click.Choice(["pending", "running", "completed", "failed"]))
@click.option("--limit", default=20, show_default=True)
@click.option("--offset", default=0, show_default=True)
@json_option
def task_list(session_id: str | None, status: str | None, limit: int, offset: int, as_json: bool) -> None:
    """List tasks, newest first."""
    found = _memory().tasks(session_id=session_id, status=status, limit=limit, offset=offset)
    if as_json:
        emit_json(found)
    else:
        out.print(_table(found, ["id", "agent_type", "status", "session_id", "created_at"]))


# -- operations --------------------------------------------------------------------
@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def export(file: str, as_json: bool) -> None:
    """Write every record to FILE (versioned JSONL)."""
    from engram.copy import count_records

    memory = _memory()
    # Every kind the export writes (conversation records too), so the bar ends at its total.
    with progress_bar("exporting", sum(count_records(memory).values())) as advance:
        counts = memory.export(file, progress=advance)
    _print_counts("exported", counts, as_json)


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def import_(file: str, as_json: bool) -> None:
    """Load records from an export FILE; safe to run twice."""
    from engram.copy import count_records as stored
    from engram.transfer import count_records

    memory = _memory()
    before = sum(stored(memory).values())
    with progress_bar("importing", count_records(Path(file))) as advance:
        counts = memory.import_(file, progress=advance)
    # Import upserts: a record already there (same id or key) is updated or left as it is, not added.
    new = max(sum(stored(memory).values()) - before, 0)
    old = max(sum(counts.values()) - new, 0)
    _print_counts("imported", counts, as_json, note=f": {new} new, {old} already there (updated or unchanged)")


@cli.command("copy")
@click.argument("src_url", metavar="SRC_URL")
@click.argument("dst_url", metavar="DST_URL")
@click.option("--batch-size", default=1000, show_default=True, help="Records per batch.")
@json_option
def copy_(src_url: str, dst_url: str, batch_size: int, as_json: bool) -> None:
    """Copy every record from SRC_URL into DST_URL (any two backends); safe to run again."""
    from engram.copy import copy_store, count_records

    settings = load_settings(click.get_current_context().find_object(_Context).config)
    with Memory(src_url, settings=settings) as src, Memory(dst_url, settings=settings) as dst:
        shown = err if as_json else out  # keep stdout pure JSON under --json
        shown.print(f"from: {location(src_url)}\nto:   {location(dst_url)}", markup=False)
        with progress_bar("copying", sum(count_records(src).values())) as advance:
            counts = copy_store(src, dst, batch_size=batch_size, progress=advance)
    _print_counts("copied and verified", counts, as_json)


def _print_counts(verb: str, counts: dict[str, int], as_json: bool, note: str = "") -> None:
    if as_json:
        emit_json(counts)
    else:
        plural = {"entry": "entries", "summary": "summaries"}
        listed = ", ".join(f"{n} {kind if n == 1 else plural.get(kind, kind + 's')}" for kind, n in counts.items())
        out.print(f"{verb} {listed}{note}", markup=False)


@cli.command()
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


@cli.command()
@click.option("--namespace", "-n", default=None, help="Only this namespace (default: all).")
@json_option
def reindex(namespace: str | None, as_json: bool) -> None:
    """Embed entries and chat messages that lack a vector with the configured embedder.

    Reports how many of each were embedded (messages only without --namespace). After a
    change of embedder, drops the old model's vectors and re-embeds everything.
    """
    state = click.get_current_context().find_object(_Context)
    state.check_embedder = False
    with progress_bar("embedding", None) as advance:
        done = state.memory.reindex(namespace, progress=advance)
    entries, messages = done.entries, done.messages
    if as_json:
        emit_json({"embedded": int(done), "entries": entries, "messages": messages})
    else:
        out.print(
            f"embedded {entries} entr{'y' if entries == 1 else 'ies'} "
            f"and {messages} message{'' if messages == 1 else 's'}"
        )


@cli.command()
def vacuum() -> None:
    """Reclaim space and optimize the indexes."""
    _memory().vacuum()
    out.print("vacuumed")


@cli.command()
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
            f"{report.sessions} ended sessions ({report.tasks} tasks), {report.checkpoints} checkpoints"
        )


# -- server ------------------------------------------------------------------------
# serve, mcp, project, key, user, secrets, transactions live in engram.server.commands,
# which registers them on `cli`; imported last because it uses the helpers above.
import engram.server.commands  # noqa: E402,F401
import engram.cli_chat  # noqa: E402,F401  (engram chat ..., engram checkpoint ...)


def main() -> None:
    cli(prog_name="engram")


if __name__ == "__main__":
    # `python -m engram.cli`: run the importable module's group, where the server commands registered.
    from engram.cli import main as _main

    _main()
