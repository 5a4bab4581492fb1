"""``engram run ...``: runs of agents inside sessions (start, pause, resume, finish)."""

from __future__ import annotations

import click

from engram.cli._common import _memory, json_option, parse_json_option
from engram.cli._output import _records, _show, _show_id, emit_json


@click.group()
def run() -> None:
    """Start, pause, resume and finish runs of agents inside sessions."""


@run.command("start")
@click.argument("session_id")
@click.option("--run-id", help="The run's id (default: a new UUID4).")
@click.option("--user-id", help="Whose run (default: the session's user).")
@click.option("--agent-id", help="The agent that runs it.")
@json_option
def run_start(session_id: str, run_id: str | None, user_id: str | None, agent_id: str | None, as_json: bool) -> None:
    """Start a running run in a session (an unknown session id starts that session); print its id."""
    started = _memory().run_start(session_id, run_id=run_id, user_id=user_id, agent_id=agent_id)
    _show_id(started, as_json)


@run.command("pause")
@click.argument("run_id")
@click.argument("state")
@json_option
def run_pause(run_id: str, state: str, as_json: bool) -> None:
    """Save a running run's STATE (JSON) as its checkpoint and mark it paused."""
    _show(_memory().run_pause(run_id, parse_json_option("STATE", state)), as_json)


@run.command("resume")
@click.argument("run_id")
def run_resume(run_id: str) -> None:
    """Resume a paused, failed or cancelled run, once; print {run, state} as JSON."""
    emit_json(_memory().run_resume(run_id))


@run.command("finish")
@click.argument("run_id")
@click.option("--status", type=click.Choice(["completed", "error", "cancelled"]), required=True)
@click.option("--state", metavar="JSON", help="With error or cancelled: the state to save.")
@json_option
def run_finish(run_id: str, status: str, state: str | None, as_json: bool) -> None:
    """End a run as completed (final), error or cancelled (both resumable)."""
    memory, saved = _memory(), parse_json_option("--state", state)
    if status == "completed":
        if state is not None:
            raise click.UsageError("--state goes with --status error or cancelled")
        finished = memory.run_complete(run_id)
    else:
        finished = memory.run_fail(run_id, saved) if status == "error" else memory.run_cancel(run_id, saved)
    _show(finished, as_json)


@run.command("list")
@click.option("--session", "session_id", metavar="ID", help="Only runs of this session.")
@click.option("--user-id", help="Only runs of this user.")
@click.option("--resumable", is_flag=True, help="Only paused, failed and cancelled runs.")
@click.option("--limit", default=20, show_default=True)
@json_option
def run_list(session_id: str | None, user_id: str | None, resumable: bool, limit: int, as_json: bool) -> None:
    """List runs, most recently updated first."""
    memory = _memory()
    found = (
        memory.resumable_runs(session_id, user_id, limit=limit)
        if resumable
        else memory.runs(session_id=session_id, user_id=user_id, limit=limit)
    )
    _records(found, ["id", "session_id", "status", "user_id", "checkpoint_id", "updated_at"], as_json)
