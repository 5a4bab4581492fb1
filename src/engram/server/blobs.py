"""REST routes of the blob store: upload (raw or multipart, streamed), download (streamed), stat, list, delete.

Thin like ``engram.server.routes``: every route works on the key's project's
``memory.blobs``. Uploads are not read whole: a raw body goes to the blob store
a chunk at a time as it arrives (a worker thread pulls the chunks from the
event loop); a multipart upload is spooled by the form parser (to disk past
1 MiB) and then streamed in. A declared ``Content-Length`` over the blob limit
is refused (413) before a byte is read; a body that passes it while streaming
is refused as soon as it does, and nothing is kept. The request-body limit of
the other routes (``max_request_bytes``) does not apply here: the blob limit
does (``blob_body_limit``, used by the app's body-limit middleware).

Downloads carry the blob's ``Content-Type`` and ``Content-Length`` and are sent
as attachments under a sandboxing CSP, so an uploaded HTML file cannot run as a
page of the server's origin.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio.from_thread
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from engram.blobs._input import CHUNK
from engram.blobs.opening import blob_limits
from engram.config import Settings
from engram.errors import InvalidInput, NotFound
from engram.models import BlobRef, BlobStats
from engram.server._body_limit import BodyCap
from engram.server._paths import ExactPathRoute
from engram.server.deps import AdminDep, CallerDep
from engram.server.routes import errors
from engram.validation import json_text

router = APIRouter(prefix="/api/v1", route_class=ExactPathRoute)
BlobIdPath = Annotated[str, Path(min_length=1, max_length=256, description="The blob's id (64 hex digits) or blob:<id>.")]
Source = Literal["user", "tool", "system"]
MULTIPART_ENVELOPE = 1024 * 1024  # room for a multipart body's headers and boundaries around the file


def blob_body_limit(settings: Settings) -> BodyCap:
    """The largest upload body the server reads: the blob limit, plus a multipart envelope."""
    return BodyCap(
        blob_limits(settings)[0] + MULTIPART_ENVELOPE, "storage.blob_store.max_blob_size, plus 1 MiB for multipart"
    )


class CleanupResult(BaseModel):
    removed: int
    dry_run: bool


class _Body(io.RawIOBase):
    """The request body as a blocking stream for the blob store, read on a worker thread:
    each chunk is awaited on the event loop as the store asks for it."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            self._done = True
            return b""

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            self._pending = memoryview(anyio.from_thread.run(self._next))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


@router.post("/blobs", name="blobs.put", status_code=201, response_model=BlobRef, responses=errors(413),
             tags=["blobs"], openapi_extra={"requestBody": {"content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "file": {"type": "string", "format": "binary"}}, "required": ["file"]}}},
                 "required": True}})  # fmt: skip
async def put_blob(
    request: Request,
    caller: CallerDep,
    name: Annotated[str | None, Query(max_length=256, description="A name to keep with it (default: the multipart file name).")] = None,
    mime_type: Annotated[str | None, Query(max_length=255, description="Media type (default: the body's or part's Content-Type).")] = None,
    source: Annotated[Source, Query(description="Who produced it.")] = "user",
    metadata: Annotated[str | None, Query(description="Metadata as a JSON object.")] = None,
) -> BlobRef:
    """Store the request body (raw bytes, or the `file` part of a multipart form) as a blob.

    The same bytes give the same blob (its id is their SHA-256). Over the blob limit: 413,
    before anything is read when Content-Length says so, and nothing is kept.
    """
    memory = await run_in_threadpool(lambda: caller.memory)
    blobs = memory.blobs
    declared = _declared_length(request)
    content_type = request.headers.get("content-type", "")
    multipart = content_type.lower().startswith("multipart/form-data")
    if declared is not None and declared > blobs.blob_limit + (MULTIPART_ENVELOPE if multipart else 0):
        blobs._check_size(declared)  # 413 naming the blob limit; the body is never read
    meta = json_text("metadata", metadata) if metadata is not None else None
    if multipart:
        async with request.form(max_files=1, max_fields=0) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise InvalidInput("a multipart upload needs one file field named 'file'")
            ref = await run_in_threadpool(
                blobs.put, upload.file, name=name or upload.filename or None,
                mime_type=mime_type or _media_type(upload.content_type), source=source, metadata=meta,
            )  # fmt: skip
    else:
        body = _Body(request.stream().__aiter__())
        ref = await run_in_threadpool(
            blobs.put, body, name=name, mime_type=mime_type or _media_type(content_type), source=source, metadata=meta
        )
    caller.target = ref.id
    return ref


def _media_type(content_type: str | None) -> str | None:
    """The body's Content-Type as the blob's, unless it says nothing (octet-stream or none)."""
    if not content_type or content_type.split(";")[0].strip().lower() in ("application/octet-stream", ""):
        return None
    return content_type.strip()


@router.get("/blobs", name="blobs.list", response_model=list[BlobRef], responses=errors(), tags=["blobs"])
def list_blobs(
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    source: Annotated[Source | None, Query(description="Only blobs from this source.")] = None,
    older_than_days: Annotated[float | None, Query(ge=0, le=36500, description="Only blobs stored more than this many days ago.")] = None,
) -> list[BlobRef]:
    """The project's blobs, newest first."""
    older = None if older_than_days is None else timedelta(days=older_than_days)
    return caller.memory.blobs.list(limit=limit, offset=offset, source=source, older_than=older)


@router.get("/stats/blobs", name="blobs.stats", response_model=BlobStats, responses=errors(), tags=["blobs"])
def blob_stats(caller: CallerDep) -> BlobStats:
    """How many blobs the project holds, their total size, the backend and where it keeps them."""
    return caller.memory.blobs.stats()


@router.post("/prune/blobs", name="blobs.cleanup", response_model=CleanupResult, responses=errors(403), tags=["blobs"])
def cleanup_blobs(
    caller: AdminDep,
    older_than_days: Annotated[float | None, Query(ge=0, le=36500, description="Default: cleanup_after_days.")] = None,
    dry_run: Annotated[bool, Query(description="Count what would go; remove nothing.")] = False,
) -> CleanupResult:
    """Remove old blobs that no message attaches any more (project admins, like `POST /prune`)."""
    return CleanupResult(removed=caller.memory.blobs.cleanup(older_than_days, dry_run=dry_run), dry_run=dry_run)


@router.get("/blobs/{blob_id}/meta", name="blobs.stat", response_model=BlobRef, responses=errors(404), tags=["blobs"])
def stat_blob(blob_id: BlobIdPath, caller: CallerDep) -> BlobRef:
    """The blob's ref: size, media type, name, SHA-256, source, metadata, when it was stored."""
    return caller.memory.blobs.stat(blob_id)


def _headers(ref: BlobRef) -> dict[str, str]:
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in (ref.name or ref.id))
    return {
        "Content-Length": str(ref.size),
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(ref.name or ref.id)}",
        "ETag": f'"{ref.id}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, max-age=31536000, immutable",  # an id names these bytes forever
    }


@router.get("/blobs/{blob_id}", name="blobs.get", response_class=StreamingResponse, responses={
    **errors(404), 200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                         "description": "The blob's bytes, with its Content-Type and Content-Length."}},
    tags=["blobs"])  # fmt: skip
def get_blob(blob_id: BlobIdPath, caller: CallerDep) -> Response:
    """The blob's bytes, streamed, with its Content-Type and Content-Length."""
    blobs = caller.memory.blobs
    ref = blobs.stat(blob_id)
    stream = blobs.open(ref)

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type=ref.mime_type, headers=_headers(ref))


@router.head("/blobs/{blob_id}", name="blobs.head", responses=errors(404), tags=["blobs"])
def head_blob(blob_id: BlobIdPath, caller: CallerDep) -> Response:
    """The download's headers (Content-Type, Content-Length, ETag) without its bytes."""
    ref = caller.memory.blobs.stat(blob_id)
    return Response(status_code=200, media_type=ref.mime_type, headers=_headers(ref))


@router.delete("/blobs/{blob_id}", name="blobs.delete", status_code=204, responses=errors(404), tags=["blobs"])
def delete_blob(blob_id: BlobIdPath, caller: CallerDep) -> Response:
    """Delete the blob (messages that attach it keep a reference to nothing)."""
    if not caller.memory.blobs.delete(blob_id):
        raise NotFound(f"no blob {blob_id}")
    return Response(status_code=204)



