"""Repeated identical searches answered from the cache, invalidated by every write.

Each scope has a generation: a random token per namespace, one for searches
of all namespaces, and an epoch for writes that may touch any namespace
(prune, clearing vectors). A result is kept under a key made of the request,
stamped with the tokens read before it was computed; it is served only while
those are still the current tokens. A write replaces the tokens of what it
wrote (see :mod:`engram.cache.invalidation`), so older results are never
served again. One read (``MGET`` on Redis) fetches the tokens and the result
together, so a hit costs one round trip. Tokens are random rather than counters, so a token
lost to eviction or ``clear`` can never come back to name an old result: a
search that finds one missing creates it and does not cache that time.

Entries with an expiry: the latest ``expires_at`` written to a scope is kept
(an atomic max); until it has passed, searches of that scope are not cached,
since an expiry changes results without any write.
"""

from __future__ import annotations

import json
import time
import uuid
from hashlib import blake2b
from typing import Any

from engram.cache.base import Cache
from engram.models import SearchResult

EPOCH = "g:epoch"
ALL = "*"


def _gen(scope: str) -> str:
    return f"g:{scope}"


def _expiry(scope: str) -> str:
    return f"t:{scope}"


class SearchCache:
    """Search results in ``view`` for ``ttl`` seconds, keyed by request and generation."""

    def __init__(self, view: Cache, ttl: float):
        self.view = view
        self.ttl = ttl

    def lookup(self, namespace: str | None, request: dict[str, Any]) -> tuple[SearchResult | None, tuple[str, str] | None]:
        """``(result, None)`` from the cache, ``(None, ticket)`` to compute and :meth:`keep` with the
        ticket, or ``(None, None)`` when this search must not be cached."""
        scope = ALL if namespace is None else "n:" + namespace
        text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
        key = "r:" + blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
        epoch, gen, expiry, stored = self.view.get_text([EPOCH, _gen(scope), _expiry(scope), key])
        if expiry is not None and float(expiry) > time.time():
            return None, None
        if epoch is None or gen is None:
            fresh = {k: uuid.uuid4().hex for k, v in ((EPOCH, epoch), (_gen(scope), gen)) if v is None}
            self.view.set_many(fresh)
            return None, None
        stamp = f"{epoch}|{gen}"
        if stored is not None:
            cached = json.loads(stored)
            if cached.get("stamp") == stamp:
                self.view.tally(hits=1)
                return SearchResult.model_validate(cached["result"]), None
        self.view.tally(misses=1)
        return None, (key, stamp)

    def keep(self, ticket: tuple[str, str], result: SearchResult) -> None:
        key, stamp = ticket
        self.view.set(key, {"stamp": stamp, "result": result.model_dump(mode="json")}, ttl=self.ttl)

    def written(
        self, namespaces: frozenset[str] | None, latest_expiry: float | None
    ) -> None:
        """Invalidate what a write touched (``namespaces`` None: everything)."""
        if namespaces is None:
            self.view.set_many({EPOCH: uuid.uuid4().hex})
        else:
            tokens = {_gen("n:" + ns): uuid.uuid4().hex for ns in namespaces}
            self.view.set_many({**tokens, _gen(ALL): uuid.uuid4().hex})
        if latest_expiry is not None:
            for scope in (
                [ALL]
                if namespaces is None
                else [ALL, *("n:" + ns for ns in namespaces)]
            ):
                self.view.raise_to(_expiry(scope), latest_expiry)
