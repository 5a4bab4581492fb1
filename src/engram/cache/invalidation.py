"""Tell the search cache about every write to a store's entries, whoever makes it.

:func:`watch_entry_writes` wraps, on one open store, the ten ``Store``
methods that change what an entry search can return (entries, their vectors,
namespaces, pruning) and calls ``written(namespaces, latest_expiry)`` after
each: ``namespaces`` is the set written (None: any), ``latest_expiry`` the
latest ``expires_at`` among entries written (a POSIX time), if any. Every path
through this store object (the facade, import, copy into it, the server) is
covered by the one wrapper. Inside ``store.transaction()`` the calls are
gathered and made once the transaction is over, so no search can read the
old rows under a new generation.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

Scope = tuple[frozenset[str] | None, float | None]
Written = Callable[[frozenset[str] | None, float | None], None]
EVERY = (None, None)


def _entries(entries: Iterable[Any]) -> Scope:
    entries = list(entries)
    expiries = [
        e.expires_at.timestamp()
        for e in entries
        if getattr(e, "expires_at", None) is not None
    ]
    return frozenset(e.namespace for e in entries), max(expiries, default=None)


def _rows(rows: Iterable[Any]) -> Scope:
    rows = list(rows)
    latest = max((r.expires_at for r in rows if r.expires_at is not None), default=None)  # to_iso text sorts as time
    return frozenset(r.namespace for r in rows), None if latest is None else datetime.fromisoformat(latest).timestamp()


# method -> what a call of it writes, from its bound arguments.
ENTRY_WRITES: dict[str, Callable[[dict[str, Any]], Scope | None]] = {
    "put_entries": lambda a: _entries(a["entries"]),
    "put_entry_rows": lambda a: _rows(a["rows"]),  # an import's entries, timestamps as text
    "put_entries_with_vectors": lambda a: _entries(a["entries"]),
    "put_vectors": lambda a: (frozenset(i.namespace for i in a["items"]), None),
    "delete_entry": lambda a: (frozenset([a["namespace"]]), None),
    "delete_namespace": lambda a: (frozenset([a["namespace"]]), None),
    "prune_expired": lambda a: EVERY,
    "prune_entries": lambda a: (
        None
        if a.get("dry_run")
        else (
            EVERY if a.get("namespace") is None else (frozenset([a["namespace"]]), None)
        )
    ),
    "clear_vectors": lambda a: EVERY,
}
# Methods that take their entries as an iterable of parts, pulled while they write (put_entry_parts):
# what they wrote is known only afterwards, from the parts as they were taken.
STREAMED_ENTRY_WRITES = {"put_entry_parts": "parts"}


class _Pending(threading.local):
    depth = 0
    namespaces: set[str] | None = None
    every = False
    expiry: float | None = None
    any = False


def watch_entry_writes(store: Any, written: Written) -> None:
    """Make ``store`` call ``written`` after each write of entries (see the module docstring)."""
    pending = _Pending()

    def report(scope: Scope) -> None:
        namespaces, expiry = scope
        if pending.depth == 0:
            written(namespaces, expiry)
            return
        pending.any = True
        if namespaces is None:
            pending.every = True
        else:
            pending.namespaces = (pending.namespaces or set()) | namespaces
        if expiry is not None:
            pending.expiry = max(expiry, pending.expiry or expiry)

    def wrap(name: str, scope_of: Callable[[dict[str, Any]], Scope | None]) -> None:
        method = getattr(store, name)
        signature = inspect.signature(method)

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            scope = scope_of(bound.arguments)
            try:
                return method(*args, **kwargs)
            finally:  # a failed write may still have written part (a batch); invalidating costs little
                if scope is not None:
                    report(scope)

        setattr(store, name, call)

    def wrap_streamed(name: str, argument: str) -> None:
        method = getattr(store, name)
        signature = inspect.signature(method)

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            taken: list[Any] = []
            parts = bound.arguments[argument]
            bound.arguments[argument] = (taken.append(part) or part for part in parts)
            try:
                return method(*bound.args, **bound.kwargs)
            finally:
                report(_entries(e for part in taken for e in part))

        setattr(store, name, call)

    for name, scope_of in ENTRY_WRITES.items():
        wrap(name, scope_of)
    for name, argument in STREAMED_ENTRY_WRITES.items():
        wrap_streamed(name, argument)

    transaction = store.transaction

    @contextmanager
    def gathered() -> Iterator[None]:
        pending.depth += 1
        try:
            with transaction():
                yield
        finally:
            pending.depth -= 1
            if pending.depth == 0 and pending.any:
                scope: Scope = (
                    None if pending.every else frozenset(pending.namespaces or ()),
                    pending.expiry,
                )
                pending.namespaces, pending.every, pending.expiry, pending.any = (
                    None,
                    False,
                    None,
                    False,
                )
                written(*scope)

    store.transaction = gathered
