"""The MCP tools for the blob store: put (base64 in), get (base64 out, small blobs), list, delete.

Registered by ``engram.server.mcp.build_mcp_server`` with its ``tool`` and
``call`` helpers, like the chat tools. Bytes travel as base64 inside JSON, so
``blob_get`` refuses blobs over :data:`MCP_BLOB_GET_MAX` bytes with a message
naming the REST download (``GET /api/v1/blobs/{id}``), which streams.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from engram.errors import ContentTooLarge, InvalidInput, NotFound
from engram.memory import Memory

MCP_BLOB_GET_MAX = 1024 * 1024  # bytes; base64 makes it a third bigger on the wire

BLOB_TOOL_DESCRIPTIONS: dict[str, str] = {
    "blob_put": (
        "Store a file or other binary object given as base64 (content_base64), with an optional name, "
        "mime_type, source (user, tool or system) and metadata object. The same bytes are stored once. "
        "Returns the blob's ref: {id, uri (blob:<id>, to use as a chat message attachment), size, mime_type, "
        "name, sha256, created_at}."
    ),
    "blob_get": (
        f"Get a blob's bytes as base64 by id or blob: URI, with its ref. Blobs over {MCP_BLOB_GET_MAX} bytes "
        "are refused: download those with GET /api/v1/blobs/{id} of the REST API, which streams them."
    ),
    "blob_list": (
        "List blobs, newest first, optionally only those from one source (user, tool, system); paged by limit "
        "and offset. Returns {blobs: [ref, ...]}."
    ),
    "blob_delete": "Delete a blob by id or blob: URI. Returns {deleted: true}, or an error when there is none.",
}

BlobIdArg = Annotated[str, Field(description="The blob's id (64 hex digits) or its blob:<id> URI.")]


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("content_base64 must be standard base64 (A-Z, a-z, 0-9, +, /, = padding)") from None


def _get(m: Memory, blob_id: str) -> dict[str, Any]:
    ref = m.blobs.stat(blob_id)
    if ref.size > MCP_BLOB_GET_MAX:
        raise ContentTooLarge(
            f"blob {ref.id} is {ref.size} bytes; blob_get returns at most {MCP_BLOB_GET_MAX}: "
            f"download it with GET /api/v1/blobs/{ref.id} of the REST API"
        )
    return {"ref": ref.model_dump(mode="json"), "content_base64": base64.b64encode(m.blobs.get(ref)).decode("ascii")}


def register_blob_tools(
    tool: Callable[[Callable[..., Any]], Callable[..., Any]],
    call: Callable[[Context, str | None, Any, Callable[[Memory], Any]], Awaitable[Any]],
    dump: Callable[[Any], Any],
) -> None:
    """Add the blob tools to the server that ``tool`` registers with."""

    @tool
    async def blob_put(
        content_base64: Annotated[str, Field(description="The bytes, base64-encoded.")],
        ctx: Context,
        name: Annotated[str | None, Field(description="A name to keep with it, e.g. chart.png.")] = None,
        mime_type: Annotated[str | None, Field(description="Media type, e.g. image/png (default: from the name).")] = None,
        source: Annotated[Literal["user", "tool", "system"], Field(description="Who produced it.")] = "tool",
        metadata: Annotated[dict[str, Any] | None, Field(description="JSON object of metadata.")] = None,
    ) -> dict[str, Any]:
        def put(m: Memory) -> Any:
            return dump(m.blobs.put(_decode(content_base64), name=name, mime_type=mime_type, source=source,
                                    metadata=metadata))  # fmt: skip

        return await call(ctx, "mcp.blob_put", "id", put)

    @tool
    async def blob_get(blob_id: BlobIdArg, ctx: Context) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: _get(m, blob_id))

    @tool
    async def blob_list(
        ctx: Context,
        source: Annotated[Literal["user", "tool", "system"] | None, Field(description="Only blobs from this source.")] = None,
        limit: Annotated[int, Field(description="How many at most (1 to 10000).")] = 50,
        offset: Annotated[int, Field(description="Skip this many first.")] = 0,
    ) -> dict[str, Any]:
        return await call(ctx, None, None, lambda m: {"blobs": dump(m.blobs.list(limit=limit, offset=offset, source=source))})

    @tool
    async def blob_delete(blob_id: BlobIdArg, ctx: Context) -> dict[str, Any]:
        def delete(m: Memory) -> Any:
            if not m.blobs.delete(blob_id):
                raise NotFound(f"no blob {blob_id}")
            return {"deleted": True}

        return await call(ctx, "mcp.blob_delete", blob_id, delete)
