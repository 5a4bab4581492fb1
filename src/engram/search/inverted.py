"""An in-process inverted index for BM25 over analyzed documents.

``CompiledQuery.rank`` scans every document of the corpus for each query.
This index keeps postings (stem -> documents) so that a query looks only at
the documents that contain its terms, with the same statistics and the same
formula, hence the same scores. Backends that search client-side (redis://)
keep one per namespace and update it as documents come and go.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

from engram.search.bm25 import B, K1, AnalyzedText, CompiledQuery
from engram.search.query import And, Node, Not, Or, Term
from engram.search.text import stem

K = TypeVar("K", bound=Hashable)


class InvertedIndex(Generic[K]):
    """Analyzed documents by key, with postings and the corpus statistics BM25 needs."""

    def __init__(self) -> None:
        self.docs: dict[K, AnalyzedText] = {}
        self.postings: dict[str, set[K]] = {}
        self.total_length = 0

    def __len__(self) -> int:
        return len(self.docs)

    def add(self, key: K, doc: AnalyzedText) -> None:
        if key in self.docs:
            self.remove(key)
        self.docs[key] = doc
        self.total_length += doc.length
        for token in {t for field in doc.fields for t in field}:
            self.postings.setdefault(token, set()).add(key)

    def remove(self, key: K) -> None:
        doc = self.docs.pop(key, None)
        if doc is None:
            return
        self.total_length -= doc.length
        for token in {t for field in doc.fields for t in field}:
            keys = self.postings.get(token)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.postings[token]

    def sync(self, wanted: Iterable[K], load: Callable[[list[K]], dict[K, AnalyzedText]]) -> None:
        """Make the index hold exactly ``wanted``: drop the others, ``load`` the missing ones."""
        wanted = set(wanted)
        for key in [k for k in self.docs if k not in wanted]:
            self.remove(key)
        missing = [k for k in wanted if k not in self.docs]
        if missing:
            for key, doc in load(missing).items():
                self.add(key, doc)

    # -- querying --------------------------------------------------------------------
    def _containing(self, stems: tuple[str, ...], prefix: bool) -> set[K]:
        """Documents holding every stem (the last one as a prefix when ``prefix``)."""
        sets: list[set[K]] = []
        for i, s in enumerate(stems):
            if prefix and i == len(stems) - 1:
                union: set[K] = set()
                for token, keys in self.postings.items():
                    if token.startswith(s):
                        union |= keys
                sets.append(union)
            else:
                sets.append(self.postings.get(s, set()))
        if not sets:
            return set()
        sets.sort(key=len)
        return set(sets[0]).intersection(*sets[1:])

    def _candidates(self, node: Node) -> set[K]:
        """A superset of the documents ``node`` matches (NOT children do not narrow it)."""
        if isinstance(node, Term):
            return self._containing(_stems(node), node.prefix)
        if isinstance(node, Or):
            out: set[K] = set()
            for child in node.children:
                out |= self._candidates(child)
            return out
        if isinstance(node, And):
            positive = [c for c in node.children if not isinstance(c, Not)]
            sets = sorted((self._candidates(c) for c in positive), key=len)
            return set(sets[0]).intersection(*sets[1:]) if sets else set(self.docs)
        return set(self.docs)  # a bare NOT: parse() never produces one at the top

    def _matches(self, node: Node, key: K, doc: AnalyzedText) -> bool:
        if isinstance(node, Term):
            stems = _stems(node)
            if len(stems) == 1 and not node.prefix:  # a plain word: a set lookup
                return key in self.postings.get(stems[0], ())
            return any(_hits(stems, node.prefix, doc))
        if isinstance(node, Not):
            return not self._matches(node.child, key, doc)
        if isinstance(node, And):
            return all(self._matches(c, key, doc) for c in node.children)
        return any(self._matches(c, key, doc) for c in node.children)  # type: ignore[union-attr]

    def rank(self, query: CompiledQuery, accept: Callable[[K], bool] | None = None) -> list[tuple[K, float]]:
        """Documents matching ``query`` (and ``accept``), best first, scored like ``CompiledQuery.rank``
        with this index's documents as the corpus; equal scores in key order (keys must be orderable)."""
        total = len(self.docs) or 1
        avgdl = (self.total_length / total) or 1.0
        patterns = [(p.stems, p.prefix) for p in query.scored]
        idf: dict[tuple[tuple[str, ...], bool], float] = {}
        for stems, prefix in patterns:
            if (stems, prefix) in idf:
                continue
            if len(stems) == 1 and not prefix:
                n = len(self.postings.get(stems[0], ()))
            else:
                n = sum(1 for k in self._containing(stems, prefix) if any(_hits(stems, prefix, self.docs[k])))
            idf[(stems, prefix)] = max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6)
        weights = query.weights
        ranked = []
        for key in self._candidates(query.node):
            doc = self.docs[key]
            if not self._matches(query.node, key, doc) or (accept is not None and not accept(key)):
                continue
            score = 0.0
            norm = K1 * (1 - B + B * doc.length / avgdl)
            for stems, prefix in patterns:
                freq = sum(w * h for w, h in zip(weights, _hits(stems, prefix, doc)))
                if freq:
                    score += idf[(stems, prefix)] * freq * (K1 + 1) / (freq + norm)
            ranked.append((key, score))
        ranked.sort(key=lambda pair: (-pair[1], pair[0]))  # equal scores: by key, deterministically
        return ranked


def _stems(term: Term) -> tuple[str, ...]:
    return tuple(stem(t) for t in term.tokens)


def _hits(stems: tuple[str, ...], prefix: bool, doc: AnalyzedText) -> list[int]:
    """Occurrences of the pattern in each field, as ``CompiledQuery.hits`` counts them."""
    if len(stems) == 1 and not prefix:
        return [field.count(stems[0]) for field in doc.fields]
    m = len(stems)
    last = stems[-1]
    out = []
    for field in doc.fields:
        hits = 0
        for i in range(len(field) - m + 1):
            if all(field[i + j] == stems[j] for j in range(m - 1)) and (
                field[i + m - 1] == last or (prefix and field[i + m - 1].startswith(last))
            ):
                hits += 1
        out.append(hits)
    return out
