"""The MCP server: engram's memory, sessions, tasks and chat memory as tools for agents.

Built on the official SDK (``mcp.server.mcpserver.MCPServer``). The same tools
serve two transports: ``engram mcp`` over stdio on one local store, and
streamable HTTP mounted in the REST app at ``/mcp``, where each request's API
key picks the project (see ``engram.server.app``). Tool descriptions are fixed
text (a snapshot test guards them). A failed call is an MCP tool error
(``is_error``) whose text is the same message the REST API gives, with the REST
error shape as its structured content.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import Field, ValidationError

from engram.errors import EngramError, InvalidInput
from engram.memory import Memory
from engram.server.mcp_blobs import BLOB_TOOL_DESCRIPTIONS, register_blob_tools
from engram.server.mcp_chat import CHAT_TOOL_DESCRIPTIONS, register_chat_tools
from engram.server.routes import SearchMode, search_kwargs

INSTRUCTIONS = (
    "engram is persistent memory for agents. Store facts with memory_store under a namespace and key, "
    "find them with memory_search (words, \"phrases\", OR, prefix*, -exclusions), track work with "
    "sessions and tasks, keep a session's chat history with the chat_ tools, and save the state of a run "
    "paused for a human with checkpoint_save (resume it once with checkpoint_resume)."
)

TOOL_DESCRIPTIONS: dict[str, str] = {
    "memory_store": (
        "Store a memory: content under (namespace, key). Storing the same key again in the same namespace "
        "replaces the content and keeps the entry's id; metadata is replaced when given, kept when left out, "
        "and cleared by {}. Optional metadata is a JSON object; "
        "optional ttl is seconds until the memory expires; optional context is what surrounds the memory "
        "(a title, a date, the turns before it), embedded with it for search by meaning and stored as the "
        "entry's context (replaced by each store). Returns the stored entry."
    ),
    "memory_search": (
        "Search memories, best match first. The query language: plain words (all must match, stemmed, "
        "case-insensitive), \"exact phrase\", a OR b, a AND b, prefix*, -excluded, and parentheses. "
        "mode: auto (default: hybrid where the store has embeddings, else full-text), fts, vector (by meaning) "
        "or hybrid (both, fused by rank); threshold drops vector matches below that cosine similarity. "
        "Optionally restrict to one namespace and to metadata values. Returns {count, results: "
        "[{entry, score, match_type, ...}]}; a higher score is a better match."
    ),
    "memory_get": "Get the memory stored under (namespace, key). Returns the entry, or an error when there is none.",
    "memory_list": (
        "List memories, most recently updated first, optionally of one namespace, with keys starting with "
        "key_prefix, or whose metadata has the given values. Paged by limit and offset. Returns {entries}."
    ),
    "memory_delete": "Delete the memory stored under (namespace, key). Returns {deleted: true}, or an error when there is none.",
    "memory_namespaces": "List the namespaces that hold at least one memory. Returns {namespaces}.",
    "session_start": (
        "Start a new agent session, with optional metadata, user_id and agent_id. Returns the session; keep its id."
    ),
    "session_end": "End an active session with status ended (default) or error. Returns the session.",
    "session_active": "List the sessions that are still active, newest first. Returns {sessions}.",
    "task_create": (
        "Create a pending task for an agent type, with any JSON input, optionally inside a session "
        "(session_id). Returns the task; keep its id."
    ),
    "task_update": (
        "Move a task to pending, running, completed or failed, optionally with a JSON output "
        "(completed and failed record completed_at). Returns the task."
    ),
    "task_list": "List tasks, newest first, optionally of one session and with one status. Returns {tasks}.",
    **CHAT_TOOL_DESCRIPTIONS,
    **BLOB_TOOL_DESCRIPTIONS,
}


@dataclass(frozen=True)
class Target:
    """Where a tool call goes: the store, and how to log a write (None: not logged)."""

    memory: Memory
    record: Callable[[str, str | None, str, int, float], None] | None = None


Resolver = Callable[[Context], Target]


def error_result(exc: EngramError) -> CallToolResult:
    """The one MCP tool-error shape: the REST message as text, the REST error shape as structure."""
    return CallToolResult(
        content=[TextContent(type="text", text=exc.message)],
        structured_content={"error": {"type": type(exc).__name__, "status": exc.status, "message": exc.message,
                                      "details": None}},
        is_error=True,
    )


class _Server(MCPServer):
    """An MCPServer whose argument errors (missing, wrong type) come back in the one tool-error shape."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            return error_result(InvalidInput(argument_problems(name, exc.__cause__)))


def argument_problems(tool: str, error: ValidationError) -> str:
    """What is wrong with a tool call's arguments, by name; never the values (they may be secrets)."""
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors(include_input=False)
    ]
    return f"invalid arguments for {tool}: " + "; ".join(problems[:5])


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


NamespaceArg = Annotated[str, Field(description="Namespace of the memory.")]
OptionalNamespace = Annotated[str | None, Field(description="Only this namespace (default: all).")]
MetadataArg = Annotated[dict[str, Any] | None, Field(description="JSON object of metadata.")]
FilterArg = Annotated[dict[str, Any] | None, Field(description="Only memories whose metadata has these values.")]
LimitArg = Annotated[int, Field(description="How many at most (1 to 10000).")]
OffsetArg = Annotated[int, Field(description="Skip this many first.")]


def build_mcp_server(resolve: Resolver) -> MCPServer:
    """The engram MCP server; ``resolve`` maps each call's context to its project's store."""
    server = _Server("engram", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING")

    async def call(ctx: Context, operation: str | None, target: Any, fn: Callable[[Memory], Any]) -> Any:
        where = resolve(ctx)
        start = time.perf_counter()
        try:
            result = await anyio.to_thread.run_sync(fn, where.memory)
        except EngramError as exc:
            if operation and where.record:
                where.record(operation, _target(target, None), type(exc).__name__, exc.status,
                             (time.perf_counter() - start) * 1000)
            return error_result(exc)
        if operation and where.record:
            where.record(operation, _target(target, result), "ok", 200, (time.perf_counter() - start) * 1000)
        return result

    def tool(fn: Callable[..., Any]) -> Callable[..., Any]:
        server.add_tool(fn, name=fn.__name__, description=TOOL_DESCRIPTIONS[fn.__name__], structured_output=True)
        return fn

    @tool
    async def memory_store(
        key: Annotated[str, Field(description="Key of the memory, unique within its namespace.")],
        content: Annotated[str, Field(description="The text to remember.")],
        ctx: Context,
        namespace: NamespaceArg = "default",
        metadata: MetadataArg = None,
        ttl: Annotated[float | None, Field(description="Seconds until it expires (default: never).")] = None,
        context: Annotated[
            str | None, Field(description="What surrounds the memory, embedded ahead of it (default: none).")
        ] = None,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.memory_store", f"{namespace}/{key}", lambda m: _dump(
            m.store(key, content, namespace=namespace, metadata=metadata, ttl=ttl, context=context)))

    @tool
    async def memory_search(
        query: Annotated[str, Field(description="What to look for, in the query language.")],
        ctx: Context,
        namespace: OptionalNamespace = None,
        limit: LimitArg = 10,
        metadata: FilterArg = None,
        mode: Annotated[SearchMode | None, Field(description="auto (default), fts, vector or hybrid.")] = None,
        threshold: Annotated[float | None, Field(description="Minimum vector similarity, -1 to 1.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: _dump(m.search(
            query, namespace=namespace, limit=limit, metadata=metadata, **search_kwargs(mode, threshold))))

    @tool
    async def memory_get(
        key: Annotated[str, Field(description="Key of the memory.")], ctx: Context, namespace: NamespaceArg = "default"
    ) -> dict[str, Any]:
        def get(m: Memory) -> Any:
            entry = m.get(key, namespace=namespace)
            if entry is None:
                from engram.errors import NotFound

                raise NotFound(f"no entry {key!r} in namespace {namespace!r}")
            return _dump(entry)

        return await call(ctx, None, None, get)

    @tool
    async def memory_list(
        ctx: Context,
        namespace: OptionalNamespace = None,
        limit: LimitArg = 20,
        offset: OffsetArg = 0,
        metadata: FilterArg = None,
        key_prefix: Annotated[str | None, Field(description="Only keys starting with this.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"entries": _dump(m.list(
            namespace=namespace, limit=limit, offset=offset, metadata=metadata, key_prefix=key_prefix))})

    @tool
    async def memory_delete(
        key: Annotated[str, Field(description="Key of the memory.")], ctx: Context, namespace: NamespaceArg = "default"
    ) -> dict[str, Any]:
        def delete(m: Memory) -> Any:
            if not m.delete(key, namespace=namespace):
                from engram.errors import NotFound

                raise NotFound(f"no entry {key!r} in namespace {namespace!r}")
            return {"deleted": True}

        return await call(ctx, "mcp.memory_delete", f"{namespace}/{key}", delete)

    @tool
    async def memory_namespaces(ctx: Context) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"namespaces": m.namespaces()})

    @tool
    async def session_start(
        ctx: Context,
        metadata: MetadataArg = None,
        user_id: Annotated[str | None, Field(description="The user whose session this is.")] = None,
        agent_id: Annotated[str | None, Field(description="The agent that runs it.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.session_start", "id", lambda m: _dump(
            m.session_start(metadata, user_id=user_id, agent_id=agent_id)))

    @tool
    async def session_end(
        session_id: Annotated[str, Field(description="The session's id.")],
        ctx: Context,
        status: Annotated[Literal["ended", "error"], Field(description="ended or error.")] = "ended",
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.session_end", session_id, lambda m: _dump(m.session_end(session_id, status=status)))

    @tool
    async def session_active(ctx: Context, limit: LimitArg = 20, offset: OffsetArg = 0) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"sessions": _dump(m.sessions(status="active", limit=limit, offset=offset))})

    @tool
    async def task_create(
        agent_type: Annotated[str, Field(description="The kind of agent that does the task.")],
        ctx: Context,
        input: Annotated[Any, Field(description="Any JSON input of the task.")] = None,
        session_id: Annotated[str | None, Field(description="The session the task belongs to.")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.task_create", "id", lambda m: _dump(m.task_create(agent_type, input, session_id=session_id)))

    @tool
    async def task_update(
        id: Annotated[str, Field(description="The task's id.")],
        status: Annotated[Literal["pending", "running", "completed", "failed"], Field(description="The new status.")],
        ctx: Context,
        output: Annotated[Any, Field(description="Any JSON output (default: keep the current one).")] = None,
    ) -> dict[str, Any]:
        return await call(ctx, "mcp.task_update", id, lambda m: _dump(m.task_update(id, status, output=output)))

    @tool
    async def task_list(
        ctx: Context,
        session_id: Annotated[str | None, Field(description="Only tasks of this session.")] = None,
        status: Annotated[Literal["pending", "running", "completed", "failed"] | None, Field(description="Only tasks with this status.")] = None,
        limit: LimitArg = 20,
        offset: OffsetArg = 0,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"tasks": _dump(m.tasks(session_id=session_id, status=status, limit=limit, offset=offset))})

    register_chat_tools(tool, call, _dump)
    register_blob_tools(tool, call, _dump)
    return server


def _target(target: Any, result: Any) -> str | None:
    """The logged target; ``"id"`` means the id of the record the call created."""
    if target == "id":
        return result.get("id") if isinstance(result, dict) else None
    return target


def _version() -> str:
    from engram import __version__

    return __version__


def run_stdio(memory: Memory) -> None:
    """Serve the tools over stdio on one store (``engram mcp``)."""
    build_mcp_server(lambda ctx: Target(memory)).run("stdio")
