"""The MCP tools for conversation memory: chat messages, summaries, profiles, checkpoints.

Registered by ``engram.server.mcp.build_mcp_server`` with its ``tool`` and
``call`` helpers, so they resolve the project, log writes and turn errors into
tool errors exactly like the other tools. Lookups that can miss share their
NotFound messages with the REST routes (``engram.memory.lookups``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from engram.memory import Memory, lookups
from engram.memory.lookups import checkpoints_of, history_of, profile_of, summary_of

CHAT_TOOL_DESCRIPTIONS: dict[str, str] = {
    "chat_add_message": (
        "Append a message to a session's chat history; a session_id never seen before starts that session "
        "(1 to 128 letters, digits and _ . : @ -). role is system, user, assistant or tool; optionally the "
        "user_id and agent_id it belongs to, a metadata object, tool_calls (on an assistant message, OpenAI shape) "
        "or tool_call_id (on a tool message: the call it answers). Returns the stored message with its id."
    ),
    "chat_history": (
        "Get a session's chat messages, oldest first: the newest limit messages (default 50), optionally only "
        "those before or after a message id or an ISO 8601 date-time. Returns {messages}; an error when the "
        "session does not exist."
    ),
    "chat_search": (
        "Search chat messages by content, best match first, by words, by meaning or both (mode fts, vector, "
        "hybrid; auto, the default, is hybrid where messages have embeddings, else fts), with the query language "
        "of memory_search (words, \"exact phrase\", a OR b, prefix*, -excluded); optionally only one session's "
        "or one user's messages, and only vector matches above a similarity threshold. "
        "Returns {count, results: [{message, score, match_type, fts_rank, vector_rank, ...}]}."
    ),
    "chat_summary": (
        "Get the running summary of a session: its content and how many messages it covers. "
        "An error when the session has no summary yet."
    ),
    "user_profile": (
        "Get what is known about a user (by user_id): traits, each with its value and the ids of the messages "
        "it came from. An error when there is no profile."
    ),
    "checkpoint_save": (
        "Save the state of a paused agent run (any JSON value) in a session, e.g. while it waits for a human, "
        "optionally with the run's run_id. Returns the checkpoint; keep its id to resume."
    ),
    "checkpoint_resume": (
        "Resume a paused checkpoint: mark it resumed and return {id, state}. "
        "A checkpoint resumes once; resuming it again is an error."
    ),
    "checkpoint_list": (
        "List a session's checkpoints, newest first, optionally only paused or resumed ones. Returns {checkpoints}."
    ),
    "sessions_list": (
        "List sessions, optionally only one user's (user_id), one agent's (agent_id) or with one status "
        "(active, ended, error); sort newest (default) or oldest by start time; paged by limit and offset. "
        "Returns {sessions}, each with its user_id and agent_id."
    ),
    "session_delete": (
        "Delete a session with its messages, summary, checkpoints, runs and tasks (the user's profile stays). "
        "Returns {deleted: true}, or an error when the session does not exist."
    ),
    "session_metadata": "Get a session's metadata object. An error when the session does not exist.",
    "run_start": (
        "Start a run of an agent inside a session (a session_id never seen before starts that session), "
        "optionally with its run_id, user_id and agent_id. Returns the run (status running); keep its id."
    ),
    "run_pause": (
        "Pause a running run, e.g. while it waits for a human: its state (any JSON value) is saved as its latest "
        "checkpoint. Returns the run (status paused)."
    ),
    "run_resume": (
        "Resume a paused, failed or cancelled run: returns {run, state} with the state of its latest checkpoint. "
        "A run resumes once: a second resume (from any process) is an error."
    ),
    "run_finish": (
        "End a run as completed (final), error or cancelled (both resumable later), optionally saving its state. "
        "Returns the run."
    ),
    "runs_resumable": (
        "List the runs that can be resumed (paused, error, cancelled), most recently updated first, optionally "
        "of one session or one user. Returns {runs}."
    ),
    "session_update": (
        "Update a session's metadata: the keys given are set (a key set to null is removed), or with replace=true "
        "the metadata becomes exactly what is given. Returns the session."
    ),
}

Call = Callable[[Context, "str | None", Any, Callable[[Memory], Any]], Awaitable[Any]]
SessionArg = Annotated[str, Field(description="The session's id.")]
UserArg = Annotated[str | None, Field(description="The user the message belongs to.")]
RunArg = Annotated[str, Field(description="The run's id.")]
Bound = "A message id of the session, or an ISO 8601 date-time."


def register_chat_tools(tool: Callable[[Callable[..., Any]], Any], call: Call, dump: Callable[[Any], Any]) -> None:
    """Add the chat-memory tools to a server through its ``tool`` decorator and ``call`` runner."""

    @tool
    async def chat_add_message(
        session_id: SessionArg,
        role: Annotated[Literal["system", "user", "assistant", "tool"], Field(description="Who speaks.")],
        content: Annotated[str, Field(description="The text of the message.")],
        ctx: Context,
        user_id: UserArg = None,
        agent_id: Annotated[str | None, Field(description="The agent the message belongs to.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="JSON object of metadata.")] = None,
        tool_calls: Annotated[
            list[dict[str, Any]] | None, Field(description="On an assistant message: the tool calls it makes.")
        ] = None,
        tool_call_id: Annotated[str | None, Field(description="On a tool message: the call it answers.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.chat_add_message", session_id, lambda m: dump(m.add_message(
            session_id, role, content, user_id=user_id, agent_id=agent_id, metadata=metadata,
            tool_calls=tool_calls, tool_call_id=tool_call_id)))

    @tool
    async def chat_history(
        session_id: SessionArg,
        ctx: Context,
        limit: Annotated[int, Field(description="How many of the newest messages at most (1 to 10000).")] = 50,
        before: Annotated[str | None, Field(description=f"Only messages before this. {Bound}")] = None,
        after: Annotated[str | None, Field(description=f"Only messages after this. {Bound}")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"messages": dump(
            history_of(m, session_id, limit=limit, before=before, after=after))})

    @tool
    async def chat_search(
        query: Annotated[str, Field(description="What to look for, in the query language.")],
        ctx: Context,
        session_id: Annotated[str | None, Field(description="Only messages of this session.")] = None,
        user_id: Annotated[str | None, Field(description="Only messages of this user.")] = None,
        limit: Annotated[int, Field(description="How many at most (1 to 10000).")] = 10,
        mode: Annotated[
            Literal["auto", "fts", "vector", "hybrid"], Field(description="auto (default), fts, vector or hybrid.")
        ] = "auto",
        threshold: Annotated[float | None, Field(description="Minimum vector similarity, -1 to 1.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: dump(m.search_messages(
            query, mode=mode, threshold=threshold, session_id=session_id, user_id=user_id, limit=limit)))

    @tool
    async def chat_summary(session_id: SessionArg, ctx: Context) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: dump(summary_of(m, session_id)))

    @tool
    async def user_profile(
        user_id: Annotated[str, Field(description="The user's id.")], ctx: Context
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: dump(profile_of(m, user_id)))

    @tool
    async def checkpoint_save(
        session_id: SessionArg,
        state: Annotated[Any, Field(description="The run's state: any JSON value.")],
        ctx: Context,
        run_id: Annotated[str | None, Field(description="The id of the paused run.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.checkpoint_save", "id", lambda m: dump(
            m.checkpoint_save(session_id, state, run_id=run_id)))

    @tool
    async def checkpoint_resume(
        id: Annotated[str, Field(description="The checkpoint's id.")], ctx: Context
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.checkpoint_resume", id, lambda m: {"id": id, "state": m.checkpoint_resume(id)})

    @tool
    async def checkpoint_list(
        session_id: SessionArg,
        ctx: Context,
        status: Annotated[Literal["paused", "resumed"] | None, Field(description="Only checkpoints with this status.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"checkpoints": dump(checkpoints_of(m, session_id, status))})

    @tool
    async def sessions_list(
        ctx: Context,
        user_id: Annotated[str | None, Field(description="Only sessions of this user.")] = None,
        agent_id: Annotated[str | None, Field(description="Only sessions of this agent.")] = None,
        status: Annotated[Literal["active", "ended", "error"] | None, Field(description="Only sessions with this status.")] = None,
        sort: Annotated[Literal["newest", "oldest"], Field(description="By start time: newest (default) or oldest first.")] = "newest",
        limit: Annotated[int, Field(description="How many at most (1 to 10000).")] = 20,
        offset: Annotated[int, Field(description="How many to skip.")] = 0,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"sessions": dump(m.sessions(
            status=status, limit=limit, offset=offset, user_id=user_id, agent_id=agent_id, sort=sort))})

    @tool
    async def session_delete(session_id: SessionArg, ctx: Context) -> dict[str, Any]:
        def delete(m: Memory) -> dict[str, Any]:
            lookups.delete_session(m, session_id)
            return {"deleted": True}

        return await call(ctx, "mcp.session_delete", session_id, delete)

    @tool
    async def session_metadata(session_id: SessionArg, ctx: Context) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: m.session_metadata(session_id))

    @tool
    async def session_update(
        session_id: SessionArg,
        metadata: Annotated[dict[str, Any], Field(description="Keys to set; null removes a key.")],
        ctx: Context,
        replace: Annotated[bool, Field(description="Replace the whole metadata instead of merging.")] = False,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.session_update", session_id, lambda m: dump(
            m.session_update(session_id, metadata, replace=replace)))

    @tool
    async def run_start(
        session_id: SessionArg,
        ctx: Context,
        run_id: Annotated[str | None, Field(description="The run's id (default: a new UUID4).")] = None,
        user_id: Annotated[str | None, Field(description="Whose run (default: the session's user).")] = None,
        agent_id: Annotated[str | None, Field(description="The agent that runs it.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.run_start", "id", lambda m: dump(
            m.run_start(session_id, run_id=run_id, user_id=user_id, agent_id=agent_id)))

    @tool
    async def run_pause(
        run_id: RunArg, state: Annotated[Any, Field(description="The run's state: any JSON value.")], ctx: Context
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.run_pause", run_id, lambda m: dump(m.run_pause(run_id, state)))

    @tool
    async def run_resume(run_id: RunArg, ctx: Context) -> dict[str, Any]:
        return await call(ctx, "mcp.run_resume", run_id, lambda m: dump(m.run_resume(run_id)))

    @tool
    async def run_finish(
        run_id: RunArg,
        status: Annotated[Literal["completed", "error", "cancelled"], Field(description="How the run ends.")],
        ctx: Context,
        state: Annotated[Any, Field(description="With error or cancelled: the state to save.")] = None,
    ) -> dict[str, Any]:
        def finish(m: Memory) -> Any:
            if status == "completed":
                return dump(m.run_complete(run_id))
            return dump(m.run_fail(run_id, state) if status == "error" else m.run_cancel(run_id, state))

        return await call(ctx, "mcp.run_finish", run_id, finish)

    @tool
    async def runs_resumable(
        ctx: Context,
        session_id: Annotated[str | None, Field(description="Only runs of this session.")] = None,
        user_id: Annotated[str | None, Field(description="Only runs of this user.")] = None,
        limit: Annotated[int, Field(description="How many at most (1 to 10000).")] = 100,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"runs": dump(m.resumable_runs(session_id, user_id, limit=limit))})
