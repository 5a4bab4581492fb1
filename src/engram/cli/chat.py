"""``engram chat ...`` and ``engram checkpoint ...``: the messages of a session and paused
agent runs, thin commands over the conversation API.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from engram.cli._common import (
    _memory,
    confirm,
    json_option,
    parse_json_option,
    search_mode_options,
    yes_option,
)
from engram.cli._output import _records, _show, _show_id, _table, emit_json, out
from engram.memory import lookups


@click.group()
def chat() -> None:
    """Add, show, search and delete the messages of a session."""


def _print_history(messages: list[Any]) -> None:
    for m in messages:
        extra = ""
        if m.tool_calls:
            names = [str((c.get("function") or {}).get("name", "?")) for c in m.tool_calls if isinstance(c, dict)]
            extra = f" [calls {', '.join(names)}]"
        if m.tool_call_id:
            extra = f" [result of {m.tool_call_id}]"
        out.print(f"[bold]{m.role}[/bold] {m.created_at:%Y-%m-%d %H:%M:%S}{extra}", markup=True)
        out.print(m.content, markup=False)


@chat.command("add")
@click.argument("session_id")
@click.argument("role", type=click.Choice(["system", "user", "assistant", "tool"]))
@click.argument("content")
@click.option("--user-id", help="The user who wrote or is addressed.")
@click.option("--agent-id", help="The agent that wrote it.")
@click.option("--metadata", metavar="JSON", help="Metadata as a JSON object.")
@click.option("--tool-calls", metavar="JSON", help="Tool calls of an assistant message (OpenAI shape, a JSON list).")
@click.option("--tool-call-id", metavar="ID", help="On a tool message: the call it answers.")
@click.option("--attachments", metavar="JSON", help='References to stored files, e.g. \'[{"uri": "file:///a.png"}]\'.')
@json_option
def chat_add(
    session_id: str, role: str, content: str, user_id: str | None, agent_id: str | None, metadata: str | None,
    tool_calls: str | None, tool_call_id: str | None, attachments: str | None, as_json: bool,
) -> None:
    """Append a message to SESSION_ID. Use - as CONTENT to read standard input."""
    if content == "-":
        content = sys.stdin.read()
    m = _memory().add_message(
        session_id, role, content, user_id=user_id, agent_id=agent_id,
        metadata=parse_json_option("--metadata", metadata), tool_calls=parse_json_option("--tool-calls", tool_calls),
        tool_call_id=tool_call_id, attachments=parse_json_option("--attachments", attachments),
    )
    _show_id(m, as_json)


@chat.command("history")
@click.argument("session_id")
@click.option("--limit", type=int, help="Only the newest N messages.")
@click.option("--before", metavar="ID|ISO-TIME", help="Only messages before this message id or time.")
@click.option("--after", metavar="ID|ISO-TIME", help="Only messages after this message id or time.")
@json_option
def chat_history(session_id: str, limit: int | None, before: str | None, after: str | None, as_json: bool) -> None:
    """Show the messages of SESSION_ID, oldest first."""
    # A time without a zone is the terminal's local time.
    messages = lookups.history_of(_memory(), session_id, limit=limit, before=before, after=after, naive_is_local=True)
    if as_json:
        emit_json(messages)
    elif not messages:
        out.print("no messages")
    else:
        _print_history(messages)


@chat.command("delete")
@click.argument("session_id")
@yes_option("the session's history")
def chat_delete(session_id: str, yes: bool) -> None:
    """Delete every message (and the summary) of SESSION_ID (asks first unless --yes)."""
    confirm(f"delete the history of session {session_id}", yes)
    out.print(f"deleted {_memory().delete_history(session_id)} messages")


@chat.command("search")
@click.argument("query")
@click.option("--session", "session_id", metavar="ID", help="Only this session.")
@click.option("--user-id", help="Only messages of this user.")
@click.option("--limit", default=10, show_default=True)
@search_mode_options("messages have embeddings")
@json_option
def chat_search(
    query: str, session_id: str | None, user_id: str | None, limit: int, mode: str, threshold: float | None,
    as_json: bool,
) -> None:
    """Search messages by words and meaning (same modes and query language as `engram search`)."""
    result = _memory().search_messages(
        query, mode=mode, threshold=threshold, session_id=session_id, user_id=user_id, limit=limit
    )
    if as_json:
        emit_json(result)
    elif not result.results:
        out.print("no matches")
    else:
        out.print(_table([h.message for h in result.results], ["session_id", "role", "content", "created_at"]))


@chat.command("summary")
@click.argument("session_id")
@json_option
def chat_summary(session_id: str, as_json: bool) -> None:
    """Show the running summary of SESSION_ID."""
    _show(lookups.summary_of(_memory(), session_id), as_json)


@chat.command("profile")
@click.argument("user_id")
@json_option
def chat_profile(user_id: str, as_json: bool) -> None:
    """Show what is known about USER_ID."""
    profile = lookups.profile_of(_memory(), user_id)
    if as_json:
        emit_json(profile)
    else:
        for name, trait in profile.traits.items():
            out.print(f"{name}: {trait.value!r}  (from {len(trait.source_message_ids)} message(s))", markup=False)


@click.group()
def checkpoint() -> None:
    """Save, list, resume and delete paused agent runs (HITL checkpoints)."""


@checkpoint.command("save")
@click.argument("session_id")
@click.argument("state")
@click.option("--run-id", help="The run this state belongs to.")
@json_option
def checkpoint_save(session_id: str, state: str, run_id: str | None, as_json: bool) -> None:
    """Save STATE (JSON) for SESSION_ID as a paused checkpoint; prints its id."""
    c = _memory().checkpoint_save(session_id, parse_json_option("STATE", state), run_id=run_id)
    _show_id(c, as_json)


@checkpoint.command("get")
@click.argument("checkpoint_id")
@json_option
def checkpoint_get(checkpoint_id: str, as_json: bool) -> None:
    """Show one checkpoint."""
    _show(lookups.checkpoint_of(_memory(), checkpoint_id), as_json)


@checkpoint.command("list")
@click.argument("session_id")
@click.option("--status", type=click.Choice(["paused", "resumed"]))
@json_option
def checkpoint_list(session_id: str, status: str | None, as_json: bool) -> None:
    """List the checkpoints of SESSION_ID, newest first."""
    found = _memory().checkpoints(session_id, status=status)
    _records(found, ["id", "run_id", "status", "created_at", "resumed_at"], as_json)


@checkpoint.command("resume")
@click.argument("checkpoint_id")
def checkpoint_resume(checkpoint_id: str) -> None:
    """Mark a paused checkpoint resumed and print its state (JSON). Fails if already resumed."""
    emit_json(_memory().checkpoint_resume(checkpoint_id))


@checkpoint.command("delete")
@click.argument("checkpoint_id")
def checkpoint_delete(checkpoint_id: str) -> None:
    """Delete a checkpoint."""
    lookups.delete_checkpoint(_memory(), checkpoint_id)
    out.print(f"deleted checkpoint {checkpoint_id}")
