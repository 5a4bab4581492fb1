"""The semantic part of the facade: embedding on write, vector and hybrid search, reindex.

The stores only keep vectors and find neighbours (capability VECTOR);
everything else is decided here once for every backend. The entries and
chat parts take this part as a collaborator for their vectors and searches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from engram import validation as check
from engram._time import utcnow
from engram.embeddings import NO_EMBEDDER_NOTE, Embedder, create_embedder
from engram.embeddings.cache import EmbeddingCache, content_hash
from engram.embeddings.pipeline import overlapped
from engram.errors import ConfigError, InvalidInput, Unsupported
from engram.memory import overlap
from engram.models import Entry, SearchHit, SearchResult
from engram.search import hybrid
from engram.search.constraints import compile_constraints
from engram.search.context import embedded_text
from engram.search.query import MAX_TERMS, Node, parse
from engram.stores.base import (
    MESSAGE_VECTOR,
    VECTOR,
    MessageVectorItem,
    VectorItem,
    VectorModel,
)

if TYPE_CHECKING:
    from engram.cache.layer import CacheLayer
    from engram.config import Settings
    from engram.stores.base import Store

SEARCH_MODES = ("auto", "fts", "vector", "hybrid")
WORD_COUNT_CAP = 64 * hybrid.TEXT_BUDGET  # counting a word's entries stops here (only the order matters)
WORD_COUNT_TTL_S = 300.0
EXTERNAL_MODEL = "external"  # the model name recorded for vectors given precomputed, with no embedder


class Reindexed(int):
    """What ``reindex`` embedded: the total (an int, as before), and ``entries`` and ``messages`` apart."""

    entries: int
    messages: int

    def __new__(cls, entries: int, messages: int) -> "Reindexed":
        done = super().__new__(cls, entries + messages)
        done.entries, done.messages = entries, messages
        return done

    def __repr__(self) -> str:
        return f"Reindexed(entries={self.entries}, messages={self.messages})"


def as_vector(value: Any, field: str = "embedding") -> np.ndarray:
    """A precomputed embedding (list of numbers or numpy array) as a unit float32 vector.

    Raises:
        InvalidInput: not a flat, finite, non-zero sequence of numbers.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise InvalidInput(f"{field} must be a list of numbers or a numpy array, not {type(value).__name__}")
    try:
        vec = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be a list of numbers: {exc}") from exc
    if vec.ndim != 1 or vec.size == 0:
        raise InvalidInput(f"{field} must be a flat list of numbers, got shape {vec.shape}")
    if not np.all(np.isfinite(vec)):
        raise InvalidInput(f"{field} contains NaN or infinite values")
    norm = float(np.linalg.norm(vec))
    if norm == 0.0 or not math.isfinite(norm):
        raise InvalidInput(f"{field} is the zero vector; it has no direction to compare")
    return vec / norm


class Semantic:
    """Embedding and vector/hybrid search over ``backend``, with the embedder ``settings`` configure.

    Args:
        check_embedder: refuse a store whose vectors come from another model
            than the configured embedder (False is for reindex).
        caches: the cache layer (embeddings, and search results when on); None
            keeps embeddings in this process only.
    Raises:
        ConfigError: the store holds vectors of another model.
    """

    def __init__(
        self, backend: "Store", settings: "Settings", *, check_embedder: bool = True, caches: "CacheLayer | None" = None
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.url = backend.url
        self.embedder: Embedder | None = create_embedder(settings)
        self._embedding_cache = caches.embeddings if caches else EmbeddingCache(settings.embedding_cache_size)
        self._search_cache = caches.searches if caches else None
        self._word_counts: dict[Any, tuple[int, float]] = {}
        self.vectors = VECTOR in backend.capabilities
        if self.vectors and settings.vector_exact_max is not None and hasattr(backend, "vector_exact_max"):
            setattr(backend, "vector_exact_max", settings.vector_exact_max)  # a tuning knob of the vector engine
        if check_embedder and self.vectors and self.embedder is not None:
            recorded = self.backend.vector_model()
            if recorded is not None and recorded.name != self.embedder.name:
                raise ConfigError(
                    f"{self.url} holds vectors of {recorded.name} ({recorded.dimensions} dimensions), but the "
                    f"configured embedder is {self.embedder.name}: run `engram reindex` to re-embed every entry "
                    "with it (vectors of two models are never mixed), or configure the embedder that made them"
                )

    @property
    def embedder_note(self) -> str | None:
        """Why search is full-text only, or None when search by meaning is available."""
        if not self.vectors:
            return f"the {self.url.split(':', 1)[0]}:// backend has no vector search: search is full-text only"
        return NO_EMBEDDER_NOTE if self.embedder is None else None

    # -- embedding -------------------------------------------------------------
    def model_for(self, dimensions: int) -> VectorModel:
        """The model a vector of ``dimensions`` is recorded under; checks the size."""
        if self.embedder is not None:
            model = VectorModel(self.embedder.name, self.embedder.dimensions)
        else:
            recorded = self.backend.vector_model()
            model = recorded or VectorModel(EXTERNAL_MODEL, dimensions)
        if dimensions != model.dimensions:
            raise InvalidInput(
                f"embedding has {dimensions} dimensions; this store takes {model.dimensions}-dimensional "
                f"vectors of {model.name}"
            )
        return model

    def embed(
        self, texts: Sequence[str], *, look_in_store: bool = True, queries: bool = False, one_thread: bool = False
    ) -> np.ndarray:
        """Embed texts with the configured embedder (cached by model and content hash).

        ``look_in_store=False`` skips looking for stored vectors of the same
        text (two reads that a search query, rarely a stored text, never needs).
        ``queries``: the texts are search queries, embedded the embedder's
        faster way where it has one (``query_name``), and cached under that name;
        ``one_thread``: on one thread, as other work of the search takes the other cores.

        Raises:
            InvalidInput: no embedder is configured.
        """
        embedder = self.embedder
        if embedder is None:
            raise InvalidInput(f"cannot embed: {NO_EMBEDDER_NOTE}")
        texts = list(texts)
        name, encode = embedder.name, embedder.embed
        if queries and hasattr(embedder, "embed_queries"):
            name = getattr(embedder, "query_name", None) or name
            encode = partial(embedder.embed_queries, threads=1) if one_thread else embedder.embed_queries
            look_in_store = look_in_store and name == embedder.name
        out = np.empty((len(texts), embedder.dimensions), dtype=np.float32)
        digests = [content_hash(t) for t in texts]
        cache = self._embedding_cache if self._embedding_cache.size > 0 else None
        known = cache.get_many(name, digests, embedder.dimensions) if cache is not None else {}
        missing: dict[bytes, list[int]] = {}
        for i, digest in enumerate(digests):
            vec = known.get(digest)
            if vec is None:
                missing.setdefault(digest, []).append(i)
            else:
                out[i] = vec
        learned: dict[bytes, np.ndarray] = {}
        if missing and self.vectors and look_in_store:
            recorded = self.backend.vector_model()
            if recorded is not None and recorded.name == embedder.name:
                for digest, vec in self.backend.vectors_by_hash(list(missing)).items():
                    for i in missing.pop(digest):
                        out[i] = vec
                    learned[digest] = vec
        if missing:
            order = list(missing)
            vectors = encode([texts[missing[d][0]] for d in order])
            for digest, vec in zip(order, vectors):
                for i in missing[digest]:
                    out[i] = vec
                learned[digest] = vec
        if cache is not None:
            cache.put_many(name, learned)
        return out

    def embeddings(
        self,
        contents: Sequence[str],
        given: Sequence[Any],
        embed: bool | None,
        *,
        capable: bool,
        note: str | None,
        skip_empty: bool = False,
    ) -> list[tuple[int, np.ndarray]]:
        """``(position, vector)`` for each record to get one: the precomputed vectors, plus
        embeddings (in one batch) where asked or configured. Shared by entries and messages.

        With ``skip_empty``, empty contents (an assistant turn that only calls
        tools) are not embedded; a vector given for one is kept.
        """
        if embed and self.embedder is None:
            raise InvalidInput(f"embed=True, but {NO_EMBEDDER_NOTE}")
        if not capable:
            if any(g is not None for g in given) or embed:
                raise Unsupported(note or "this backend cannot store embeddings")
            return []
        out: list[tuple[int, np.ndarray]] = []
        to_embed: list[int] = []
        model: VectorModel | None = None
        for i, (content, vec) in enumerate(zip(contents, given)):
            if vec is not None:
                model = model or self.model_for(len(vec))
                if len(vec) != model.dimensions:
                    self.model_for(len(vec))  # raises with the message
                out.append((i, vec))
            elif embed is not False and self.embedder is not None and (content or not skip_empty):
                to_embed.append(i)
        if to_embed:
            vectors = self.embed([contents[i] for i in to_embed])
            out += list(zip(to_embed, vectors))
        return out

    def vectors_for(self, entries: Sequence[Entry], given: Sequence[Any], embed: bool | None) -> list[VectorItem]:
        """Vectors to attach: the precomputed ones, plus embeddings where asked or configured
        (of each entry's content after its context, when it has one)."""
        texts = [embedded_text(e.content, e.context) for e in entries]
        found = self.embeddings(
            texts, given, embed, capable=self.vectors,
            note=self.embedder_note or "this backend cannot store embeddings",
        )
        return [VectorItem.of(entries[i], v) for i, v in found]

    def attach(self, items: Sequence[VectorItem]) -> None:
        if items:
            self.backend.put_vectors(items, model=self.model_for(len(items[0].vector)))

    def put_with_vectors(self, entries: Sequence[Entry], items: Sequence[VectorItem], now: Any) -> list[Entry]:
        """Upsert entries and attach their vectors in one write: a crash leaves both or neither."""
        if not items:
            return self.backend.put_entries(entries, now=now)
        model = self.model_for(len(items[0].vector))
        return self.backend.put_entries_with_vectors(entries, items, now=now, model=model)

    # -- search ----------------------------------------------------------------
    def _query_vector(self, query: str, vector: Any, *, beside: bool = False) -> np.ndarray:
        if vector is not None:
            vec = as_vector(vector, "vector")
            self.model_for(len(vec))
            return vec
        if self.embedder is None:
            raise InvalidInput(f"search by meaning needs an embedder or vector=: {NO_EMBEDDER_NOTE}")
        # A query may hold lone surrogates (content cannot); tokenizers and JSON APIs reject them.
        text = query.encode("utf-8", "replace").decode("utf-8")
        return self.embed([text], look_in_store=False, queries=True, one_thread=beside)[0]

    @staticmethod
    def check_search(query: Any, mode: Any, threshold: Any) -> None:
        check.choice("mode", mode, SEARCH_MODES)
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0
        ):
            raise InvalidInput(f"threshold must be a cosine similarity from -1.0 to 1.0 (usually 0.0..1.0), got {threshold!r}")
        if not isinstance(query, str):
            raise InvalidInput(f"query must be a string, not {type(query).__name__}")

    def _parse_query(self, query: str, mode: str, vector: Any) -> Node | None:
        """The query's tree, parsed once before any mode runs; None for a blank query beside ``vector=``.

        The term limit binds where the tree is compiled whole: fts, and
        queries written in the language. A plain question in hybrid or vector
        mode is searched by its words' OR (capped) and its meaning.

        Raises:
            QuerySyntaxError: malformed, empty (without ``vector=``) or too long.
        """
        if vector is not None and mode != "fts" and not query.strip():
            return None
        plain = mode != "fts" and not hybrid.has_operators(query)
        return parse(query, max_terms=None if plain else MAX_TERMS)

    def ranked(
        self,
        query: str,
        *,
        mode: str,
        limit: int,
        threshold: float | None,
        vector: Any,
        capable: bool,
        has_vectors: Callable[[], bool],
        text: Callable[[Any, int], Sequence[tuple[Any, float]]],
        near: Callable[[np.ndarray, int], Sequence[tuple[Any, float]]],
        count: Callable[[Any, int], int | None],
        frequency: Callable[[Any], int],
        indexed: Callable[[Any], Sequence[str]] = lambda record: (record.content,),
        unsupported: str | None = None,
    ) -> tuple[str, list[hybrid.Fused]]:
        """The search modes, once for every kind of record (entries, messages).

        ``text(node, n)`` and ``near(qvec, n)`` are the kind's full-text and
        vector retrievers (best first, already scoped); ``count`` and
        ``frequency`` feed :func:`hybrid.prune_keywords`; ``indexed(record)``
        is the text full-text search indexes for a record. Returns the mode
        that ran (``auto`` resolved) and the hits as :class:`hybrid.Fused`.

        Every hit of every mode satisfies the query's exclusions, phrases and
        prefixes (:mod:`engram.search.constraints`); in hybrid mode a hit
        found by meaning alone also needs ``threshold`` or, without one, the
        ``search_relevance_floor`` setting, so a query that matches nothing
        is not padded with whatever is least far away.
        """
        if mode == "auto":
            can_embed = vector is not None or self.embedder is not None
            mode = "hybrid" if capable and can_embed and has_vectors() else "fts"
        node = self._parse_query(query, mode, vector)
        if mode != "fts" and not capable:
            raise Unsupported(unsupported or self.embedder_note or "no vector search")
        admits = compile_constraints(node)

        def kept(fused: list[hybrid.Fused]) -> list[hybrid.Fused]:
            if admits is not None:
                fused = [f for f in fused if admits(indexed(f.entry))]
            return fused[:limit]

        if mode == "fts":
            assert node is not None
            hits = text(node, limit)
            return "fts", kept([hybrid.Fused(e, s, fts_rank=i, fts_score=s) for i, (e, s) in enumerate(hits, start=1)])

        floor = -2.0 if threshold is None else float(threshold)
        meaning = "" if node is None else hybrid.embedding_text(query, node)
        # Candidates the constraints may drop are made up for by looking deeper.
        depth = max(hybrid.CANDIDATES, limit) if admits is not None or mode == "hybrid" else limit
        if mode == "vector":
            qvec = self._query_vector(meaning, vector)
            found = near(qvec, depth)
            return "vector", kept([
                hybrid.Fused(e, s, vector_rank=i, vector_score=s) for i, (e, s) in enumerate(found, start=1) if s >= floor
            ])

        def text_list() -> Sequence[tuple[Any, float]]:
            keywords = None if node is None else hybrid.keyword_query(query, node)
            if keywords is not None and not hybrid.has_operators(query):
                keywords = hybrid.prune_keywords(keywords, count, frequency, budget=hybrid.TEXT_BUDGET)
            return [] if keywords is None else text(keywords, depth)

        # The words' list does not need the query vector: it runs while the query is embedded.
        pending = overlap.beside(text_list) if vector is None and self.embedder is not None else None
        try:
            listed = near(self._query_vector(meaning, vector, beside=pending is not None), depth)
        except BaseException:
            if pending is not None:
                overlap.abandon(pending)
            raise
        fts = text_list() if pending is None else overlap.joined(pending, text_list)
        nearest = [(e, s) for e, s in listed if s >= floor]
        fused = hybrid.fuse(fts, nearest, depth=depth if len(nearest) == len(listed) else None)
        if threshold is None:
            relevance = self.settings.search_relevance_floor
            fused = [f for f in fused if f.fts_rank is not None or (f.vector_score or 0.0) >= relevance]
        return "hybrid", kept(fused)

    def search(
        self,
        query: str,
        *,
        namespace: str | None = None,
        limit: int = 10,
        metadata: dict[str, Any] | None = None,
        mode: str = "auto",
        threshold: float | None = None,
        vector: Any = None,
    ) -> SearchResult:
        """Search by words, by meaning, or both, best first.

        Modes: ``fts`` (BM25 over key and content, with the query language:
        words must all match, stemmed, case-insensitive; ``"exact phrase"``,
        ``a AND b``, ``a OR b``, ``prefix*``, ``-excluded`` or ``NOT excluded``,
        parentheses); ``vector`` (cosine similarity to the query's embedding,
        or to ``vector``); ``hybrid`` (both lists fused by rank; a question
        without operators is searched as the OR of its content words);
        ``auto`` (hybrid when the namespace has embeddings and a query vector
        can be had, else fts). The query is parsed first in every mode, and
        every hit of every mode honours its exclusions, phrases and prefixes.
        In hybrid mode an entry found by meaning alone needs a cosine
        similarity of at least ``threshold``, or without one the
        ``search_relevance_floor`` setting (0.2), so a query that matches
        nothing finds nothing.

        Args:
            threshold: drop vector candidates whose cosine similarity is below it.
            vector: a precomputed query embedding, instead of embedding ``query``
                (``query`` may then be empty).
        Raises:
            QuerySyntaxError: the query is malformed, empty or over 4096 characters; the message says why.
            InvalidInput: a bad mode, threshold or vector, or vector search without an embedder.
            Unsupported: vector or hybrid mode on a backend without vector search.
        """
        self.check_search(query, mode, threshold)
        ns = None if namespace is None else check.name("namespace", namespace)
        meta = check.metadata_filter(metadata)
        limit = check.limit(limit)
        ticket = None
        if self._search_cache is not None:
            cached, ticket = self._search_cache.lookup(ns, self._search_request(query, ns, limit, meta, mode, threshold, vector))
            if cached is not None:
                return cached
        result = self._search(query, ns, limit, meta, mode, threshold, vector)
        if ticket is not None and self._search_cache is not None:
            self._search_cache.keep(ticket, result)
        return result

    def _search_request(
        self, query: str, ns: str | None, limit: int, meta: Any, mode: str, threshold: float | None, vector: Any
    ) -> dict[str, Any]:
        """What a search's result depends on besides the store's contents (its cache key)."""
        return {
            "query": query, "namespace": ns, "limit": limit, "metadata": meta, "mode": mode, "threshold": threshold,
            "vector": None if vector is None else as_vector(vector, "vector").tobytes().hex(),
            "embedder": None if self.embedder is None else self.embedder.name,
            "floor": self.settings.search_relevance_floor,
        }

    def _search(
        self, query: str, ns: str | None, limit: int, meta: Any, mode: str, threshold: float | None, vector: Any
    ) -> SearchResult:
        now = utcnow()
        backend = self.backend
        match, fused = self.ranked(
            query,
            mode=mode,
            limit=limit,
            threshold=threshold,
            vector=vector,
            capable=self.vectors,
            has_vectors=lambda: backend.count_vectors(ns) > 0,
            text=lambda node, n: backend.search_text(node, namespace=ns, metadata=meta, limit=n, now=now),
            near=lambda qvec, n: backend.search_vector(qvec, namespace=ns, metadata=meta, limit=n, now=now),
            count=lambda node, cap: backend.count_text_matches(node, namespace=ns, cap=cap),
            frequency=self._word_frequency,
            indexed=lambda entry: (entry.key, entry.content),
        )
        results = [
            SearchHit.model_construct(entry=f.entry, score=f.score, match_type=match, fts_score=f.fts_score,
                                      fts_rank=f.fts_rank, vector_score=f.vector_score, vector_rank=f.vector_rank)
            for f in fused
        ]
        return SearchResult.model_construct(count=len(results), results=results)

    def _word_frequency(self, term: Any) -> int:
        """How many entries of the whole store hold ``term`` (capped; cached for a few minutes).

        Only orders a question's words from rare to common, so a slightly
        stale count does no harm, and the cache saves a count per word.
        """
        cache = self._word_counts
        now = time.monotonic()
        hit = cache.get(term)
        if hit is not None and now - hit[1] < WORD_COUNT_TTL_S:
            return hit[0]
        count = self.backend.count_text_matches(term, namespace=None, cap=WORD_COUNT_CAP) or 0
        if len(cache) >= 8192:
            cache.clear()
        cache[term] = (count, now)
        return count

    # -- reindex ---------------------------------------------------------------
    def reindex(self, namespace: str | None = None, *, progress: Callable[[int], None] | None = None) -> Reindexed:
        """Embed every entry (and, without ``namespace``, every chat message) that lacks a vector;
        returns how many were embedded (an int; ``.entries`` and ``.messages`` say of which kind).

        An entry stored with a context is embedded as it was stored: its
        context, then its content (:func:`engram.search.context.embedded_text`).

        When the store holds vectors of another model than the configured
        embedder, they are all dropped first and every namespace is re-embedded
        (one store never mixes two models), whatever ``namespace`` says.

        Raises:
            InvalidInput: no embedder is configured.
            Unsupported: the backend has no vector search.
        """
        if self.embedder is None:
            raise InvalidInput(f"reindex needs an embedder: {NO_EMBEDDER_NOTE}")
        if not self.vectors:
            raise Unsupported(self.embedder_note or "no vector search")
        ns = None if namespace is None else check.name("namespace", namespace)
        recorded = self.backend.vector_model()
        if recorded is not None and (recorded.name, recorded.dimensions) != (self.embedder.name, self.embedder.dimensions):
            self.backend.clear_vectors()
            ns = None
        done = {"entries": 0, "messages": 0}
        batch_size = self.settings.embedding_batch_size * 4

        def embed_contents(records: Sequence[Any]) -> np.ndarray:
            return self.embed([r.content for r in records])

        def embed_entries(entries: Sequence[Entry]) -> np.ndarray:
            return self.embed([embedded_text(e.content, e.context) for e in entries])

        def attach_entries(batch: Sequence[Entry], vectors: np.ndarray) -> None:
            self.attach([VectorItem.of(e, v) for e, v in zip(batch, vectors)])
            done["entries"] += len(batch)
            if progress:
                progress(len(batch))

        def attach_messages(messages: Sequence[Any], vectors: np.ndarray) -> None:
            self.backend.put_message_vectors(
                [MessageVectorItem(m.id, m.content, v) for m, v in zip(messages, vectors)],
                model=self.model_for(vectors.shape[1]),
            )
            done["messages"] += len(messages)
            if progress:
                progress(len(messages))

        # The next batch is embedded while the one before it is written (keyset-paged reads, so
        # reading ahead of the write never returns a batch twice).
        overlapped(self.backend.entries_without_vectors(ns, batch_size=batch_size), embed_entries, attach_entries)
        if ns is None and MESSAGE_VECTOR in self.backend.capabilities:  # messages belong to no namespace
            overlapped(self.backend.messages_without_vectors(batch_size=batch_size), embed_contents, attach_messages)
        return Reindexed(done["entries"], done["messages"])
