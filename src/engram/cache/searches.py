"""Repeated identical searches answered from the cache, invalidated by every write.

Each scope has a generation: a random token per namespace, one for searches
of all namespaces, and an epoch for writes that may touch any namespace
(prune, clearing vectors). A result is kept under a key made of the request
and the tokens it was computed under; a write replaces the tokens of what it
wrote (see :mod:`engram.cache.invalidation`), so the old results are never
read again and age out. Tokens are random rather than counters, so a token
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

    def lookup(
        self, namespace: str | None, request: dict[str, Any]
    ) -> tuple[SearchResult | None, str | None]:
        """``(result, None)`` from the cache, ``(None, key)`` to compute and :meth:`keep` under key,
        or ``(None, None)`` when this search must not be cached."""
        scope = ALL if namespace is None else "n:" + namespace
        epoch, gen, expiry = self.view.get_text([EPOCH, _gen(scope), _expiry(scope)])
        if expiry is not None and float(expiry) > time.time():
            return None, None
        if epoch is None or gen is None:
            fresh = {
                k: uuid.uuid4().hex
                for k, v in ((EPOCH, epoch), (_gen(scope), gen))
                if v is None
            }
            self.view.set_many(fresh)
            return None, None
        text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
        key = (
            "r:"
            + blake2b(
                f"{epoch}|{gen}|{text}".encode("utf-8", "surrogatepass"), digest_size=20
            ).hexdigest()
        )
        cached = self.view.get(key)
        if cached is not None:
            return SearchResult.model_validate(cached), None
        return None, key

    def keep(self, key: str, result: SearchResult) -> None:
        self.view.set(key, result.model_dump(mode="json"), ttl=self.ttl)

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
