"""Overview, namespaces, entries and search: the key's project's memories."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from engram import validation as check
from engram._time import utcnow
from engram.errors import InvalidInput, NotFound
from engram.search.vector import ann_available
from engram.search.vector.index import DEFAULT_EXACT_MAX
from engram.server.dashboard import charts, counts, highlight
from engram.server.dashboard.web import PageRoute, Viewer, form_of, quoted, redirect, render, viewer
from engram.server.models import Name
from engram.server.routes import SearchMode, search_kwargs
from engram.stores.control_base import TransactionQuery
from engram.stores.contracts.vectors import PGVECTOR

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
PAGE_SIZES = (20, 50, 100)
# The entries page's order choices (short, stable URL values) and the listing order each asks for.
ENTRY_ORDERS = {"new": "updated_desc", "old": "updated_asc"}
CHART_DAYS = 30
# The log read for the writes chart: enough for a busy month, bounded so the overview stays fast.
CHART_LOG_LIMIT = 10_000


def vector_index(current: Viewer) -> str:
    """How vector search runs in this project's store, in words."""
    memory = current.memory
    note = memory.embedder_note
    if note:
        return note
    if memory.backend.vector_search_path() == PGVECTOR:
        return "HNSW (pgvector) in PostgreSQL; small namespaces scanned exactly in SQL"
    exact = memory.settings.vector_exact_max or DEFAULT_EXACT_MAX
    if ann_available():
        return f"exact scan up to {exact:,} vectors per namespace, HNSW (hnswlib) above"
    return "exact scan (install hnswlib for an HNSW index on large namespaces)"


@router.get("/", name="dashboard.overview")
def overview(request: Request, current: ViewerDep) -> Response:
    """Counts per kind, storage, the embedder and index, writes per day and the largest namespaces."""
    memory = current.memory
    stats = memory.stats()
    largest = counts.largest_namespaces(memory)
    writes = None
    if current.is_admin:
        query = TransactionQuery(since=counts.since_days(CHART_DAYS), limit=CHART_LOG_LIMIT)
        log = current.control.transactions(query, project=current.caller.scope_project(None))
        per_day = counts.writes_per_day(log, CHART_DAYS)
        writes = charts.columns([(d.isoformat(), n) for d, n in per_day], title="Writes per day, last 30 days")
    return render(
        request, "overview.html", viewer=current, stats=stats,
        embedder=memory.embedder.name if memory.embedder is not None else "none (full-text search only)",
        index=vector_index(current), writes=writes,
        largest=charts.rows([(c.namespace, c.entries) for c in largest], title="Largest namespaces (live entries)"),
    )


@router.get("/namespaces", name="dashboard.namespaces")
def namespaces(request: Request, current: ViewerDep) -> Response:
    """Every namespace with its number of live entries."""
    return render(request, "namespaces.html", viewer=current, namespaces=counts.namespace_counts(current.memory))


@router.get("/entries", name="dashboard.entries")
def entries(
    request: Request,
    current: ViewerDep,
    ns: Annotated[Name, Query()],
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 50,
    order: Annotated[Literal["new", "old"], Query()] = "new",
) -> Response:
    """One namespace's entries, a page at a time, newest or oldest updated first."""
    rows = current.memory.list(namespace=ns, limit=size + 1, offset=(page - 1) * size, order=ENTRY_ORDERS[order])
    more = len(rows) > size
    rows = rows[:size]
    return render(request, "entries.html", viewer=current, ns=ns, rows=rows, page=page, size=size, order=order,
                  more=more, sizes=PAGE_SIZES)


def _entry(current: Viewer, ns: str, key: str) -> Any:
    entry = current.memory.get(key, namespace=ns)
    if entry is None:
        raise NotFound(f"no entry {key!r} in namespace {ns!r}")
    return entry


@router.get("/entry", name="dashboard.entry")
def entry(request: Request, current: ViewerDep, ns: Annotated[Name, Query()],
          key: Annotated[Name, Query()]) -> Response:
    """One entry: content, metadata, times and expiry, with the edit form."""
    found = _entry(current, ns, key)
    return render(request, "entry.html", viewer=current, entry=found,
                  metadata_json=json.dumps(found.metadata, indent=2, ensure_ascii=False))


def _metadata(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:  # the API's parser: the same nesting limit, and too deep is bad input, not a crash
        value = check.json_text("metadata", text)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}; write a JSON object such as {{\"topic\": \"food\"}}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"metadata must be a JSON object such as {{\"topic\": \"food\"}}, not {type(value).__name__}")
    return value


def _ttl(text: str, current_expiry: Any) -> float | None:
    """Seconds to live: the form's number, else what is left of the current expiry (None: never expires)."""
    text = text.strip()
    if text:
        try:
            return float(text)
        except ValueError:
            raise InvalidInput(
                f"TTL must be a number of seconds, got {text!r}; leave it empty to keep the expiry"
            ) from None
    if current_expiry is None:
        return None
    return max((current_expiry - utcnow()) / timedelta(seconds=1), 0.001)


def _store_form(current: Viewer, form: dict[str, str], ns: str, key: str, expiry: Any) -> Response:
    """Store the form's content, context, metadata and TTL (``_ttl``: empty keeps ``expiry``) as
    ``POST /api/v1/memories`` (an empty context is none: a store replaces the context)."""
    metadata = _metadata(form.get("metadata", ""))
    ttl = _ttl(form.get("ttl", ""), expiry)
    context = form.get("context", "").strip() or None
    with current.logged("memories.store", f"{ns}/{key}"):
        current.memory.store(key, form.get("content", ""), namespace=ns, metadata=metadata, ttl=ttl, context=context)
    return redirect("/entry", ns=ns, key=key, notice="saved")


@router.post("/entry", name="dashboard.entry.save")
async def save_entry(request: Request, current: ViewerDep) -> Response:
    """Replace an entry's content and metadata (an upsert, as ``POST /api/v1/memories``)."""
    form = await form_of(request, current)
    ns, key = form.get("ns", ""), form.get("key", "")
    return _store_form(current, form, ns, key, _entry(current, ns, key).expires_at)


@router.post("/entries", name="dashboard.entries.store")
async def store_entry(request: Request, current: ViewerDep) -> Response:
    """Store an entry from the form (an upsert under (namespace, key), as ``POST /api/v1/memories``)."""
    form = await form_of(request, current)
    return _store_form(current, form, form.get("ns", "").strip(), form.get("key", ""), None)


@router.get("/entry/delete", name="dashboard.entry.confirm")
def confirm_delete_entry(request: Request, current: ViewerDep, ns: Annotated[Name, Query()],
                         key: Annotated[Name, Query()]) -> Response:
    """Ask before deleting an entry."""
    _entry(current, ns, key)
    return render(request, "confirm.html", viewer=current, action="/entry/delete", fields={"ns": ns, "key": key},
                  question=f"Delete entry {key!r} from namespace {ns!r}?",
                  cancel=f"/entry?ns={quoted(ns)}&key={quoted(key)}")


@router.post("/entry/delete", name="dashboard.entry.delete")
async def delete_entry(request: Request, current: ViewerDep) -> Response:
    form = await form_of(request, current)
    ns, key = form.get("ns", ""), form.get("key", "")
    with current.logged("memories.delete", f"{ns}/{key}"):
        if not current.memory.delete(key, namespace=ns):
            raise NotFound(f"no entry {key!r} in namespace {ns!r}")
    return redirect("/entries", ns=ns, notice="deleted")


@router.get("/namespace/delete", name="dashboard.namespace.confirm")
def confirm_delete_namespace(request: Request, current: ViewerDep, ns: Annotated[Name, Query()]) -> Response:
    """Ask before deleting a namespace, saying how many entries go with it."""
    n = counts.exact_count(current.memory, ns)
    return render(request, "confirm.html", viewer=current, action="/namespace/delete", fields={"ns": ns},
                  question=f"Delete namespace {ns!r} and its {n:,} {'entry' if n == 1 else 'entries'}?",
                  cancel=f"/entries?ns={quoted(ns)}")


@router.post("/namespace/delete", name="dashboard.namespace.delete")
async def delete_namespace(request: Request, current: ViewerDep) -> Response:
    form = await form_of(request, current)
    ns = form.get("ns", "")
    with current.logged("namespaces.delete", ns):
        current.memory.delete_namespace(ns)
    return redirect("/namespaces", notice="deleted")


@router.get("/search", name="dashboard.search")
def search(
    request: Request,
    current: ViewerDep,
    q: Annotated[str, Query(max_length=10_000)] = "",
    mode: Annotated[SearchMode, Query()] = "auto",
    ns: Annotated[str, Query(max_length=256)] = "",
    meta: Annotated[str, Query(max_length=10_000)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    scope: Annotated[Literal["entries", "messages"], Query()] = "entries",
    session: Annotated[str, Query(max_length=256)] = "",
    user: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    """The search box over entries or chat messages (``scope``), in the same modes and query language;
    hits show how they matched, their scores and ranks, and the matched words marked."""
    memory = current.memory
    result: Any = None
    if q.strip():
        _check_scope_filters(scope, ns=ns, meta=meta, session=session, user=user)
        if scope == "entries":
            result = memory.search(q, namespace=ns or None, limit=limit, metadata=_metadata(meta),
                                   **search_kwargs(mode, None))
        else:
            result = memory.search_messages(q, mode=mode, session_id=session or None, user_id=user or None,
                                            limit=limit)
    hits = [] if result is None else [
        (hit, highlight.segments(hit.entry.content if scope == "entries" else hit.message.content, q))
        for hit in result.results
    ]
    return render(request, "search.html", viewer=current, q=q, mode=mode, ns=ns, meta=meta, limit=limit,
                  scope=scope, session=session, user=user, result=result, hits=hits,
                  namespaces=memory.namespaces(), modes=("auto", "fts", "vector", "hybrid"))


def _check_scope_filters(scope: str, **given: str) -> None:
    """Namespace and metadata narrow entries, session and user narrow messages: refuse a filter of the other scope."""
    other = ("session", "user") if scope == "entries" else ("ns", "meta")
    names = {"ns": "a namespace", "meta": "a metadata filter", "session": "a session", "user": "a user"}
    for field in other:
        if given[field].strip():
            raise InvalidInput(
                f"{names[field]} narrows {'messages' if scope == 'entries' else 'entries'} only; "
                f"clear it to search {scope}, or search {'messages' if scope == 'entries' else 'entries'}"
            )
