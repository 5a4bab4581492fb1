"""Query evaluation and BM25 scoring in Python, for backends without a text index.

Scores follow FTS5's ``bm25()`` (k1=1.2, b=0.75, per-column weights on term
frequency), so the same query ranks alike on memory:// and sqlite://.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from engram.search.query import And, Node, Not, Term, positive_terms
from engram.search.text import stem, stemmed_tokens

Item = TypeVar("Item")

K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class AnalyzedText:
    """The stemmed tokens of each text field of one document (key, content)."""

    fields: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, *texts: str) -> "AnalyzedText":
        return cls(tuple(tuple(stemmed_tokens(t)) for t in texts))

    @property
    def length(self) -> int:
        return sum(len(f) for f in self.fields)


@dataclass(frozen=True, slots=True)
class _Pattern:
    stems: tuple[str, ...]
    prefix: bool


def _pattern(term: Term) -> _Pattern:
    return _Pattern(tuple(stem(t) for t in term.tokens), term.prefix)


def _field_hits(pattern: _Pattern, tokens: Sequence[str]) -> int:
    n, m = len(tokens), len(pattern.stems)
    hits = 0
    for i in range(n - m + 1):
        ok = True
        for j, s in enumerate(pattern.stems):
            tok = tokens[i + j]
            last = j == m - 1
            if not (tok == s or (last and pattern.prefix and tok.startswith(s))):
                ok = False
                break
        if ok:
            hits += 1
    return hits


class CompiledQuery:
    """A parsed query ready to test and score documents."""

    def __init__(self, node: Node, weights: Sequence[float] = (1.0, 1.0)):
        self.node = node
        self.weights = tuple(weights)
        self._patterns = {id(t): _pattern(t) for t in _all_terms(node)}
        self.scored = [self._patterns[id(t)] for t in positive_terms(node)]

    def hits(self, pattern: _Pattern, doc: AnalyzedText) -> list[int]:
        return [_field_hits(pattern, f) for f in doc.fields]

    def matches(self, doc: AnalyzedText, node: Node | None = None) -> bool:
        node = self.node if node is None else node
        if isinstance(node, Term):
            return any(self.hits(self._patterns[id(node)], doc))
        if isinstance(node, Not):
            return not self.matches(doc, node.child)
        if isinstance(node, And):
            return all(self.matches(doc, c) for c in node.children)
        return any(self.matches(doc, c) for c in node.children)

    def rank(self, docs: Iterable[tuple[Item, AnalyzedText]], corpus: Sequence[AnalyzedText]) -> list[tuple[Item, float]]:
        """Score matching ``docs`` against statistics of ``corpus``; best first."""
        total = len(corpus) or 1
        avgdl = (sum(d.length for d in corpus) / total) or 1.0
        idf: dict[_Pattern, float] = {}
        for p in self.scored:
            if p not in idf:
                n = sum(1 for d in corpus if any(self.hits(p, d)))
                idf[p] = max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6)
        ranked: list[tuple[Item, float]] = []
        for item, doc in docs:
            if not self.matches(doc):
                continue
            score = 0.0
            norm = K1 * (1 - B + B * doc.length / avgdl)
            for p in self.scored:
                freq = sum(w * h for w, h in zip(self.weights, self.hits(p, doc)))
                if freq:
                    score += idf[p] * freq * (K1 + 1) / (freq + norm)
            ranked.append((item, score))
        ranked.sort(key=lambda pair: -pair[1])
        return ranked


def _all_terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return _all_terms(node.child)
    return [t for c in node.children for t in _all_terms(c)]
