"""``engram session ...`` and ``engram task ...``: agent sessions and their tasks."""

from __future__ import annotations

import json
from typing import Any

import click

from engram.cli._common import (
    _memory,
    confirm,
    json_option,
    parse_datetime_option,
    parse_json_option,
    yes_option,
)
from engram.cli._output import _records, _show, _show_id, emit_json, out
from engram import validation as check
from engram.errors import NotFound
from engram.memory import lookups


@click.group()
def session() -> None:
    """Start, end and list agent sessions."""


@session.command("start")
@click.option("--metadata", metavar="JSON", help="Metadata as a JSON object.")
@click.option("--user-id", help="The user whose session this is.")
@click.option("--agent-id", help="The agent that runs it.")
@json_option
def session_start(metadata: str | None, user_id: str | None, agent_id: str | None, as_json: bool) -> None:
    """Start a session and print its id."""
    s = _memory().session_start(parse_json_option("--metadata", metadata), user_id=user_id, agent_id=agent_id)
    _show_id(s, as_json)


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
    _show(lookups.session_of(_memory(), session_id), as_json)


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
    _records(found, ["id", "status", "user_id", "agent_id", "started_at", "ended_at"], as_json)


@session.command("delete")
@click.argument("session_id")
@yes_option("the session, its messages, summary, checkpoints, runs and tasks")
def session_delete(session_id: str, yes: bool) -> None:
    """Delete a session with everything it holds (its user's profile stays)."""
    confirm(f"delete session {session_id} and everything it holds", yes)
    lookups.delete_session(_memory(), session_id)
    out.print(f"deleted session {session_id}")


@session.command("metadata")
@click.argument("session_id")
@click.option("--set", "updates", metavar="JSON", help="Keys to set as a JSON object (null removes a key).")
@click.option("--replace", is_flag=True, help="With --set: replace the whole metadata instead of merging.")
@json_option
def session_metadata(session_id: str, updates: str | None, replace: bool, as_json: bool) -> None:
    """Show a session's metadata, or update it with --set."""
    memory = _memory()
    if updates is None:
        if replace:
            raise click.UsageError("--replace needs --set")
        emit_json(memory.session_metadata(session_id))
        return
    _show(memory.session_update(session_id, parse_json_option("--set", updates), replace=replace), as_json)


# -- tasks -------------------------------------------------------------------------
@click.group()
def task() -> None:
    """Create, update and list agent tasks."""


def _json_or_text(field: str, text: str | None) -> Any:
    """Task input/output: JSON when it parses, else the text itself.

    Raises:
        InvalidInput: JSON nested past the limit (refused as bad input, not a crash).
    """
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        return check.json_text(field, text)  # raises InvalidInput naming the nesting limit


@task.command("create")
@click.argument("agent_type")
@click.argument("input")
@click.option("--session", "session_id", metavar="ID", help="The session the task belongs to.")
@json_option
def task_create(agent_type: str, input: str, session_id: str | None, as_json: bool) -> None:
    """Create a pending task for AGENT_TYPE with INPUT (JSON or text)."""
    t = _memory().task_create(agent_type, _json_or_text("task input", input), session_id=session_id)
    _show_id(t, as_json)


@task.command("update")
@click.argument("task_id")
@click.argument("status", type=click.Choice(["pending", "running", "completed", "failed"]))
@click.option("--output", help="Output of the task (JSON or text).")
@json_option
def task_update(task_id: str, status: str, output: str | None, as_json: bool) -> None:
    """Move a task to STATUS."""
    _show(_memory().task_update(task_id, status, output=_json_or_text("task output", output)), as_json)


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
    _records(found, ["id", "agent_type", "status", "session_id", "created_at"], as_json)
