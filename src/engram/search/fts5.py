"""Compile a parsed query into an SQLite FTS5 MATCH expression.

Every token is emitted double-quoted and contains only letters and digits,
so nothing a user types reaches FTS5's own syntax.
"""

from __future__ import annotations

from engram.search.query import And, Node, Not, Or, Term

# Columns of the entries_fts table that hold text; the namespace column is
# matched separately so the namespace filter stays inside the index.
TEXT_COLUMNS = "{key content}"


# ASCII letters but "s". A token holding one of them still holds a letter after
# unicode61 and the porter stemmer (porter drops a trailing "s" with no
# condition, any other letters only while a vowel stays), so it can never be
# read as a namespace token, which is all digits.
_KEEPS_A_LETTER = frozenset("abcdefghijklmnopqrtuvwxyz")


def _could_match_namespace(term: Term) -> bool:
    """Could FTS5 read ``term`` as a bare number, i.e. match the ``ns`` column?"""
    return all(_KEEPS_A_LETTER.isdisjoint(token) for token in term.tokens)


def compile_fts5(node: Node, *, guard_terms: bool = False) -> str:
    """Return the FTS5 expression for ``node`` (without column filters).

    ``guard_terms`` puts a ``{key content}`` filter on exactly the terms that
    could match the digits-only ``ns`` column (see :func:`index_match`).
    """
    if isinstance(node, Term):
        phrase = '"' + " ".join(node.tokens) + '"' + ("*" if node.prefix else "")
        if guard_terms and _could_match_namespace(node):
            return f"{TEXT_COLUMNS} : {phrase}"
        return phrase
    if isinstance(node, Or):
        return "(" + " OR ".join(compile_fts5(c, guard_terms=guard_terms) for c in node.children) + ")"
    if isinstance(node, And):
        pos = [c for c in node.children if not isinstance(c, Not)]
        neg = [c.child for c in node.children if isinstance(c, Not)]
        expr = " AND ".join(compile_fts5(c, guard_terms=guard_terms) for c in pos)
        if len(pos) > 1:
            expr = "(" + expr + ")"
        if neg:
            excluded = " OR ".join(compile_fts5(c, guard_terms=guard_terms) for c in neg)
            expr = f"({expr} NOT ({excluded}))"
        return expr
    raise TypeError(f"a bare NOT cannot be compiled: {node!r}")  # parse() forbids it


def match_expression(node: Node, namespace_token: str | None) -> str:
    """Full MATCH string: text columns, and the namespace token when scoped."""
    text = f"{TEXT_COLUMNS} : ({compile_fts5(node)})"
    if namespace_token is None:
        return text
    return f'ns : "{namespace_token}" AND {text}'


def index_match(node: Node, namespace_token: str | None) -> str:
    """The MATCH string the SQLite store runs: the same rows and bm25 scores as
    :func:`match_expression`, faster.

    A column filter makes FTS5 read the position lists of every row holding
    the term, and bm25 counts those rows over the whole index on each query:
    at 1M entries a ``{key content}`` filter around the whole query doubled
    the search time. A term that keeps a letter cannot match the ``ns``
    column (digits only), so only the other terms carry the filter.
    """
    text = compile_fts5(node, guard_terms=True)
    if namespace_token is None:
        return text
    return f'ns : "{namespace_token}" AND {text}'
