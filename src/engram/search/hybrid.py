"""Hybrid search: natural-language keyword queries and rank fusion (pure functions).

The query language ANDs plain words, which is right for keyword search and
wrong for a question: "what did Melanie paint last year" would need every
word in one entry. In hybrid mode a query without operators becomes the OR
of its content words (stop words dropped), and BM25 ranks entries by how many
of the rarer words they share. Queries that use the language (quotes,
AND/OR/NOT, ``-``, ``*``, parentheses) are taken as written.

Fusion is score-aware: ``FTS_SHARE x 2 / (1 + text rank) + (1 - FTS_SHARE)
x cosine``. The cosine has one scale for every query and backend, so its
margins count: a turn at 0.62 beats one at 0.35 by far more than one rank.
A text score has none (FTS5's bm25 grows with the rarity of the words a
question happens to hold; PostgreSQL's ts_rank_cd is another measure), so
the words count by rank: 1 for the best match, 2/3 for the second, 1/2 for
the third. An entry missing from a full vector list (``depth`` long) counts
the lowest cosine listed, since it ranked below all of them; missing from a
shorter list, it has no vector: 0. One missing from the text list counts 0.

Measured on the LoCoMo development split (bench/locomo.py, any@10;
bench/README.md has the whole ablation). Reciprocal rank fusion (k=5, the
best k before) gave 0.724 on turns embedded alone and 0.784 on turns
embedded in their context (:mod:`engram.search.context`), where it lost
category 1 (0.662 against 0.676). This fusion gives 0.733 and 0.787 (every
category at or above rank fusion's on plain turns); shares of 0.2-0.3 are
within 0.005 of each other with context. Scaling BM25 by the best match
instead of ranking it was as good at a share of 0.15 and 0.015-0.03 worse
at 0.1 and 0.2: too sensitive to carry to other conversations.

BM25 scores every entry that matches, and the OR of a question's words
matches a lot of a big namespace: at 100k entries a typical question
matched ~16k, and scoring them (SQLite's bm25(), ~2 us a row) was most of a
hybrid search (~30-40 ms of ~60). :func:`prune_keywords` keeps that set
under :data:`TEXT_BUDGET`: when more entries match, only entries holding one
of the rarer words are candidates (as many of the rarest as fit the budget),
and all the words still score them. Dropping the common words outright lost
a third of the recall on LoCoMo's questions over a 100k-entry namespace
(any@10 0.363 unpruned, 0.247 at a budget of 1000): a speaker's name is
common, yet it is what tells two similar turns apart. Keeping them in the
score gave 0.337 at 1000, 0.357 at 2000, 0.377 at 4000, with the text half
of the search at 3.4, 4.0 and 5.6 ms against 17.7 unpruned. A namespace whose
matches fit (all of LoCoMo's conversations) is searched exactly as before.

Search by meaning always has a nearest entry, so a query that matches
nothing (``xyzzy`` among notes about tea) would return the whole namespace.
Entries found by meaning alone therefore need a cosine similarity of at least
the ``search_relevance_floor`` setting (0.2). With MiniLM, nonsense scores
below ~0.15 against ordinary sentences; on LoCoMo's development split hybrid
any@10 was 0.724 with no floor and with floors of 0.2, 0.25 and 0.3 alike
(the words' list fills the top ten), so 0.2 drops junk and costs no recall.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engram.errors import QuerySyntaxError
from engram.search.query import And, Node, Not, Or, Term, parse, positive_terms
from engram.search.text import tokens

FTS_SHARE = 0.3  # of the fused score that comes from the words (by rank); the rest is the cosine
CANDIDATES = 50  # from each list, at least; more than the page asked for so fusion can reorder
TEXT_BUDGET = 2000  # entries BM25 may score for one question's OR of words

_OPERATORS = re.compile(r'["()*]|\b(?:AND|OR|NOT)\b|(?:^|\s)-\S')

# English function words and question words: they carry no topic, and as OR
# terms they would match nearly everything.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been before being below
    between both but by can cannot could couldn did didn do does doesn doing don down during each few for
    from further had hadn has hasn have haven having he her here hers herself him himself his how i if in
    into is isn it its itself just let me more most mustn my myself no nor not now of off on once only or
    other ought our ours ourselves out over own same shan she should shouldn so some such than that the
    their theirs them themselves then there these they this those through to too under until up upon us
    very was wasn we were weren what when where which while who whom whose why will with won would
    wouldn you your yours yourself yourselves s t d ll m re ve y also ever else yet still get got
    gets getting much many kind sort thing things something anything everything really quite
    """.split()
)


def has_operators(query: str) -> bool:
    """Whether the query uses the query language (then it is taken as written)."""
    return bool(_OPERATORS.search(query))


def keyword_query(query: str, parsed: Node | None = None) -> Node | None:
    """The full-text query hybrid search runs for ``query``.

    Plain words become the OR of the distinct non-stop-words (all words when
    every one is a stop word); a query with operators is taken as written
    (``parsed``, its tree, when the caller has it). None when nothing
    searchable is left. Search rejects a malformed query before it gets
    here; called on its own, a question with a stray quote is read as words.
    """
    if has_operators(query):
        if parsed is not None:
            return parsed
        try:
            return parse(query)
        except QuerySyntaxError:
            pass  # a question with a stray quote or dash: its words still count
    words = list(dict.fromkeys(tokens(query)))
    content = [w for w in words if w not in STOPWORDS] or words
    if not content:
        return None
    terms = tuple(Term((w,)) for w in content[:64])
    return terms[0] if len(terms) == 1 else Or(terms)


def embedding_text(query: str, parsed: Node) -> str:
    """The text embedded for a search by meaning: the query as written, but without the terms
    it excludes (``tea -green`` is about tea, not green), since an embedding cannot negate."""
    if not _excludes(parsed):
        return query
    return " ".join(" ".join(t.tokens) for t in positive_terms(parsed))


def _excludes(node: Node) -> bool:
    if isinstance(node, Term):
        return False
    if isinstance(node, Not):
        return True
    return any(_excludes(c) for c in node.children)


def prune_keywords(
    node: Node,
    in_scope: Callable[[Node, int], int | None],
    overall: Callable[[Term], int],
    *,
    budget: int = TEXT_BUDGET,
) -> Node:
    """``node`` (an OR of words from :func:`keyword_query`) cut down to what BM25 can score quickly.

    ``in_scope(node, cap)`` counts the entries of the searched scope that
    match, stopping at ``cap`` (None: cannot count, nothing is dropped);
    ``overall(term)`` says how common a word is in the whole store (the
    statistic BM25's IDF uses). When more than ``budget`` entries match, the
    words are taken rarest first for as long as their OR still matches at
    most ``budget`` entries (the rarest always), and the result is
    ``rare AND node``: entries need a rare word, every word scores.
    """
    if not isinstance(node, Or) or not all(isinstance(c, Term) for c in node.children):
        return node
    total = in_scope(node, budget + 1)
    if total is None or total <= budget:
        return node
    order = sorted(range(len(node.children)), key=lambda i: (overall(node.children[i]), i))
    kept = [order[0]]
    for i in order[1:]:
        trial = sorted(kept + [i])
        count = in_scope(Or(tuple(node.children[j] for j in trial)), budget + 1)
        if count is None or count > budget:
            break
        kept = trial
    terms = tuple(node.children[j] for j in sorted(kept))
    rare = terms[0] if len(terms) == 1 else Or(terms)
    # Entries must hold a rare word; every word still scores, so an entry
    # that has a common word too (a name, say) ranks above one that has not.
    return And((rare, node))


@dataclass(slots=True)
class Fused:
    """One entry after fusion: its fused score and where each list ranked it (1-based)."""

    entry: Any
    score: float
    fts_rank: int | None = None
    fts_score: float | None = None
    vector_rank: int | None = None
    vector_score: float | None = None


def fuse(
    fts: Sequence[tuple[Any, float]],
    vector: Sequence[tuple[Any, float]],
    *,
    depth: int | None = None,
    fts_share: float = FTS_SHARE,
) -> list[Fused]:
    """Score-aware fusion of two best-first lists of ``(entry, score)``: text matches and
    cosine similarities.

    Each entry scores ``fts_share * 2 / (1 + text rank) + (1 - fts_share) * cosine``. One missing
    from the vector list counts its lowest cosine when the list is ``depth`` long (the entry ranked
    below it), else 0 (it has no vector); one missing from the text list counts 0. Entries are
    matched by ``entry.id``. Ties keep the better single rank first.
    """
    by_id: dict[str, Fused] = {}
    for rank, (entry, score) in enumerate(fts, start=1):
        by_id[entry.id] = Fused(entry, 0.0, fts_rank=rank, fts_score=score)
    for rank, (entry, score) in enumerate(vector, start=1):
        hit = by_id.get(entry.id)
        if hit is None:
            by_id[entry.id] = Fused(entry, 0.0, vector_rank=rank, vector_score=score)
        else:
            hit.vector_rank, hit.vector_score = rank, score
    full = depth is not None and len(vector) >= depth
    unlisted = min(s for _, s in vector) if full and vector else 0.0
    for hit in by_id.values():
        text = 0.0 if hit.fts_rank is None else 2.0 / (1 + hit.fts_rank)
        cosine = unlisted if hit.vector_score is None else hit.vector_score
        hit.score = fts_share * text + (1.0 - fts_share) * cosine
    best_rank = lambda f: min(r for r in (f.fts_rank, f.vector_rank) if r is not None)  # noqa: E731
    return sorted(by_id.values(), key=lambda f: (-f.score, best_rank(f)))


__all__ = [
    "CANDIDATES",
    "FTS_SHARE",
    "STOPWORDS",
    "TEXT_BUDGET",
    "Fused",
    "QuerySyntaxError",
    "embedding_text",
    "fuse",
    "has_operators",
    "keyword_query",
    "prune_keywords",
]
