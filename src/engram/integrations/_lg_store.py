"""``EngramStore``: LangGraph's ``BaseStore`` (long-term memory) over engram entries.

An item ``(namespace tuple, key) -> value`` is the engram entry
``(encoded namespace, key)``: the namespace encoded reversibly by
:mod:`._names`, the value kept whole in the entry's metadata (``v``) beside the
namespace's labels (``ns.0``, ``ns.1``, ... so a search under a prefix is a
metadata filter), and the entry's content is the item's *index text*: the
fields the index config or the put's ``index`` names, joined (the whole value as
JSON by default; empty for ``index=False``). engram indexes that text for
full-text search and, with an embedder (engram's own, or the ``embed`` of the
``index`` config given here), embeds it, so ``search(query=...)`` is engram's
hybrid search. One vector per item, of its joined index text (LangGraph's own
stores keep one per field).

TTLs are in minutes, as LangGraph's; reading an item with ``refresh_ttl``
re-stores it with its TTL, which also moves its ``updated_at``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from engram.errors import InvalidInput
from engram.integrations import _value_filter
from engram.integrations._extras import require
from engram.integrations._names import RESERVED, decode, encode
from engram.memory import Memory
from engram.models import Entry
from engram.search import hybrid
from engram.validation import MAX_LIMIT

require("langgraph", "langgraph.store.base")

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from langgraph.store.base.embed import (
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)

_VALUE = "v"  # metadata field holding the item's value
# Marks of the namespaces that have deeper ones (key: the encoded namespace), so a search
# under a namespace without any stays inside that one engram namespace (index-scoped).
_TREE = encode((RESERVED, "store-tree"))
_TTL = "ttl"  # metadata field holding the item's TTL in minutes, to refresh it on read
_WORD = re.compile(r"\w+")


def _namespace_fields(namespace: tuple[str, ...]) -> dict[str, str]:
    return {str(i): label for i, label in enumerate(namespace)}


def _prefix_filter(prefix: tuple[str, ...]) -> dict[str, str]:
    return {f"ns.{i}": label for i, label in enumerate(prefix)}


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = (
        namespace[: len(path)]
        if condition.match_type == "prefix"
        else namespace[len(namespace) - len(path) :]
    )
    return all(p == "*" or p == label for p, label in zip(path, part))


class EngramStore(BaseStore):
    """LangGraph long-term memory in an engram ``Memory`` (any backend).

    ``EngramStore(memory)`` uses an open ``Memory`` (the caller closes it);
    ``with EngramStore.from_url("sqlite:///agent.db") as store:`` opens and closes its own.

    Args:
        index: LangGraph's ``IndexConfig`` (``dims``, ``embed``, ``fields``) to
            embed items with your embeddings; without it, engram's configured
            embedder (if any) embeds the index text.
        ttl: LangGraph's ``TTLConfig`` (``default_ttl`` minutes, ``refresh_on_read``).
        mode: engram's search mode for ``search(query=...)``: ``auto`` (hybrid when
            vectors exist, else full-text), ``hybrid``, ``vector`` or ``fts``.
    """

    supports_ttl = True

    def __init__(
        self,
        memory: Memory,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        mode: str = "auto",
    ) -> None:
        self.memory = memory
        self.ttl_config = ttl
        self.mode = mode
        self.index_config = dict(index) if index else None
        self.embeddings = None
        fields = ["$"]
        if self.index_config is not None:
            if self.index_config.get("embed") is not None:
                self.embeddings = ensure_embeddings(self.index_config["embed"])
            fields = self.index_config.get("fields") or ["$"]
        self._fields = [(f, tokenize_path(f)) for f in fields]
        self._marked: set[str] = (
            set()
        )  # parents this store has marked (marks are never removed)

    @classmethod
    @contextmanager
    def from_url(
        cls,
        url: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        mode: str = "auto",
    ) -> Iterator[EngramStore]:
        """A store over a ``Memory`` opened on ``url`` (``sqlite:///...``, ``postgresql://...``, ...),
        closed when the block ends."""
        with Memory(url) as memory:
            yield cls(memory, index=index, ttl=ttl, mode=mode)

    # -- batches -----------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations: reads see the store as it was before this batch's writes,
        which then go in one transaction (the last write of a key wins)."""
        ops = list(ops)
        texts, queries = self._to_embed(ops)
        vectors = (
            dict(zip(texts, self.embeddings.embed_documents(texts)))
            if texts and self.embeddings
            else {}
        )
        query_vectors = (
            {q: self.embeddings.embed_query(q) for q in queries}
            if self.embeddings
            else {}
        )
        return self._run(ops, vectors, query_vectors)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch`, with the embeddings awaited and the store's work on a worker thread."""
        ops = list(ops)
        texts, queries = self._to_embed(ops)
        vectors, query_vectors = {}, {}
        if self.embeddings is not None:
            if texts:
                vectors = dict(
                    zip(texts, await self.embeddings.aembed_documents(texts))
                )
            found = await asyncio.gather(
                *(self.embeddings.aembed_query(q) for q in queries)
            )
            query_vectors = dict(zip(queries, found))
        return await asyncio.to_thread(self._run, ops, vectors, query_vectors)

    def _to_embed(self, ops: list[Op]) -> tuple[list[str], list[str]]:
        """The index texts of the puts and the search queries that the user's embeddings must embed."""
        if self.embeddings is None:
            return [], []
        texts = {
            self._index_text(op)
            for op in ops
            if isinstance(op, PutOp) and op.value is not None
        }
        queries = {op.query for op in ops if isinstance(op, SearchOp) and op.query}
        texts.discard("")
        return sorted(texts), sorted(queries)

    def _index_text(self, op: PutOp) -> str:
        if op.index is False:
            return ""
        fields = (
            self._fields
            if op.index is None
            else [(f, tokenize_path(f)) for f in op.index]
        )
        if fields == [("$", ["$"])]:
            return json.dumps(op.value, ensure_ascii=False, sort_keys=True, default=str)
        return "\n".join(
            text for _, path in fields for text in get_text_at_path(op.value, path)
        )

    def _run(
        self, ops: list[Op], vectors: dict[str, Any], query_vectors: dict[str, Any]
    ) -> list[Result]:
        results: list[Result] = []
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op))
            elif isinstance(op, SearchOp):
                results.append(self._search(op, query_vectors.get(op.query or "")))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            elif isinstance(op, PutOp):
                self._check_put(op)
                puts[(op.namespace, op.key)] = op
                results.append(None)
            else:
                raise InvalidInput(
                    f"unknown store operation {type(op).__name__}: use GetOp, SearchOp, PutOp or ListNamespacesOp"
                )
        if puts:
            self._apply(list(puts.values()), vectors)
        return results

    # -- items -------------------------------------------------------------------
    @staticmethod
    def _item(entry: Entry, score: float | None = None, searched: bool = False) -> Item:
        value = entry.metadata.get(_VALUE)
        if not isinstance(
            value, dict
        ):  # an entry written by engram itself, not through this store
            value = {"content": entry.content, "metadata": entry.metadata}
        namespace = decode(entry.namespace)
        if searched:
            return SearchItem(
                namespace, entry.key, value, entry.created_at, entry.updated_at, score
            )
        return Item(value=value, key=entry.key, namespace=namespace, created_at=entry.created_at,
                    updated_at=entry.updated_at)  # fmt: skip

    def _refresh(self, entries: Sequence[Entry], refresh: bool | None) -> None:
        """Restart the TTL of the entries that have one, when the read asks (or the config says) so."""
        if refresh is None:
            refresh = (self.ttl_config or {}).get("refresh_on_read", True)
        stale = [e for e in entries if refresh and e.metadata.get(_TTL) is not None]
        if stale:
            self.memory.store_many(
                [{"key": e.key, "content": e.content, "namespace": e.namespace, "metadata": e.metadata,
                  "ttl": e.metadata[_TTL] * 60} for e in stale],
                embed=False,
            )  # fmt: skip

    def _get(self, op: GetOp) -> Item | None:
        entry = self.memory.get(op.key, namespace=encode(tuple(op.namespace)))
        if entry is None:
            return None
        self._refresh([entry], op.refresh_ttl)
        return self._item(entry)

    def _check_put(self, op: PutOp) -> None:
        namespace = tuple(op.namespace)
        encode(namespace)
        if namespace[0] == RESERVED:
            raise InvalidInput(
                f"namespace {namespace!r}: the first label {RESERVED!r} is reserved by LangGraph; use another"
            )
        if op.value is not None and not isinstance(op.value, dict):
            raise InvalidInput(f"value must be a dict, not {type(op.value).__name__}")
        if op.ttl is not None and (
            isinstance(op.ttl, bool)
            or not isinstance(op.ttl, (int, float))
            or op.ttl <= 0
        ):
            raise InvalidInput(
                f"ttl is in minutes and must be a positive number, not {op.ttl!r}"
            )

    def _apply(self, puts: list[PutOp], vectors: dict[str, Any]) -> None:
        """Deletes, then every upsert in one ``store_many`` (one transaction)."""
        indexed: list[dict[str, Any]] = []
        plain: list[dict[str, Any]] = self._marks(puts)
        for op in puts:
            namespace = encode(tuple(op.namespace))
            if op.value is None:
                self.memory.delete(op.key, namespace=namespace)
                continue
            ttl = (
                op.ttl
                if op.ttl is not None
                else (self.ttl_config or {}).get("default_ttl")
            )
            text = self._index_text(op)
            item: dict[str, Any] = {
                "key": op.key, "content": text, "namespace": namespace,
                "metadata": {_VALUE: dict(op.value), "ns": _namespace_fields(tuple(op.namespace)), _TTL: ttl},
            }  # fmt: skip
            if ttl is not None:
                item["ttl"] = ttl * 60
            if text and text in vectors:
                item["embedding"] = vectors[text]
            (indexed if text and self.embeddings is None else plain).append(item)
        if plain:
            self.memory.store_many(plain, embed=False)
        if indexed:
            self.memory.store_many(indexed)  # engram's embedder, when one is configured

    def _marks(self, puts: list[PutOp]) -> list[dict[str, Any]]:
        """The marks, not yet written by this store, of every proper prefix of the puts' namespaces."""
        parents = {
            encode(tuple(op.namespace[:d]))
            for op in puts
            if op.value is not None
            for d in range(1, len(op.namespace))
        }
        new = sorted(parents - self._marked)
        self._marked.update(new)
        return [
            {"key": p, "content": "", "namespace": _TREE, "metadata": {}} for p in new
        ]

    # -- search ------------------------------------------------------------------
    def _scope(self, prefix: tuple[str, ...]) -> tuple[str | None, dict[str, Any]]:
        """``(namespace, metadata filter)`` for the items under ``prefix``: one engram namespace
        when no deeper one was ever written (the index scopes it), else a filter on the labels."""
        if not prefix:
            return None, {}
        exact = encode(prefix)
        if (
            exact not in self._marked
            and self.memory.get(exact, namespace=_TREE) is None
        ):
            return exact, {}
        return None, _prefix_filter(prefix)

    def _search(self, op: SearchOp, query_vector: Any) -> list[Item]:
        prefix = tuple(op.namespace_prefix)
        if prefix:
            encode(prefix)
        if op.limit < 0 or op.offset < 0:
            raise InvalidInput(
                f"limit and offset must be >= 0, got limit={op.limit}, offset={op.offset}"
            )
        in_store, in_python = _value_filter.split(op.filter, _VALUE)
        namespace, scope = self._scope(prefix)
        metadata = {**scope, **in_store}

        def keep(entry: Entry) -> bool:
            # Without a prefix, everything is searched: leave out the checkpointer's and the marks.
            if not prefix and entry.namespace.startswith(RESERVED + "/"):
                return False
            return not in_python or _value_filter.matches(
                entry.metadata.get(_VALUE) or {}, in_python
            )

        checked = bool(in_python) or not prefix
        wanted = op.offset + op.limit
        if op.query:
            hits = self.memory.search(
                self._query_text(op.query, query_vector), namespace=namespace, metadata=metadata or None,
                limit=max(1, min(MAX_LIMIT, wanted * 4 if checked else wanted)), mode=self.mode, vector=query_vector,
            ).results  # fmt: skip
            found = [(h.entry, h.score) for h in hits if keep(h.entry)]
        else:
            found = [
                (e, None)
                for e in self._listed(
                    namespace, metadata, keep if checked else None, wanted
                )
            ]
        page = found[op.offset : wanted]
        self._refresh([e for e, _ in page], op.refresh_ttl)
        return [self._item(e, score, searched=True) for e, score in page]

    def _query_text(self, query: str, query_vector: Any) -> str:
        """The query engram runs: a plain question searched by words alone (no vectors to
        fuse with) becomes the OR of its words, as engram's hybrid search treats it."""
        if (
            query_vector is not None
            or self.mode not in ("auto", "fts")
            or hybrid.has_operators(query)
        ):
            return query
        if self.mode == "auto" and self.memory.embedder is not None:
            return query
        # Lowercase: AND, OR and NOT are operators only in capitals; unquoted, words rank by BM25
        # without the phrase checks quotes would add.
        words = [w.lower() for w in _WORD.findall(query)]
        return " OR ".join(words) if words else query

    def _listed(
        self,
        namespace: str | None,
        metadata: dict[str, Any],
        keep: Callable[[Entry], bool] | None,
        wanted: int,
    ) -> list[Entry]:
        """Newest first, until ``wanted`` entries pass ``keep`` or none are left."""
        out: list[Entry] = []
        offset = 0
        while len(out) < wanted:
            limit = MAX_LIMIT if keep else min(MAX_LIMIT, wanted - len(out))
            page = self.memory.list(
                namespace=namespace,
                metadata=metadata or None,
                limit=limit,
                offset=offset,
            )
            offset += len(page)
            out += page if keep is None else [e for e in page if keep(e)]
            if len(page) < limit:
                break
        return out

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        found = set()
        for name in self.memory.namespaces():
            namespace = decode(name)
            if namespace[0] == RESERVED:  # the checkpointer's threads, not store items
                continue
            if all(_matches(c, namespace) for c in op.match_conditions or ()):
                found.add(
                    namespace if op.max_depth is None else namespace[: op.max_depth]
                )
        return sorted(found)[op.offset : op.offset + op.limit]
