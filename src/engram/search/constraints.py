"""What every hit must satisfy, however it was found: a query's exclusions, phrases and prefixes.

Full-text search applies the whole query; search by meaning applies none of
it, so in vector and hybrid mode ``tea -green`` would still rank "Bob drinks
green tea" first. :func:`compile_constraints` turns the parsed query into a
test that search applies to every candidate, in one place for every backend
and every mode (``engram.memory.semantic``):

- an excluded term (``-word``, ``NOT "a phrase"``) must be absent,
- a quoted phrase (or quoted word) must be present, words in order; a word
  that merely tokenizes into several (``Caroline's``) is a plain word,
- a prefix (``caff*``) must begin a word of the text,
- a plain word need not be present: a candidate found by meaning may use
  another word for it (that is what vector search is for).

AND and OR combine these as written, so ``"green tea" OR coffee`` asks
nothing of a candidate (``coffee`` may match by meaning). Text is analysed as
the index analyses it (:mod:`engram.search.text`), so ``-greens`` excludes
"green" just as full-text search does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engram.search.bm25 import AnalyzedText, CompiledQuery
from engram.search.query import And, Node, Not, Or, Term

Constraint = Callable[[Sequence[str]], bool]


def _is_free(node: Node) -> bool:
    """True when the query constrains nothing beyond what meaning may match (plain words only)."""
    if isinstance(node, Term):
        return not (node.quoted or node.prefix)
    if isinstance(node, Not):
        return False
    return all(_is_free(c) for c in node.children)


def compile_constraints(node: Node | None) -> Constraint | None:
    """A test ``admits(texts) -> bool`` over a candidate's indexed texts (key, content), or None
    when the query asks nothing of a candidate (no exclusions, phrases or prefixes)."""
    if node is None or _is_free(node):
        return None
    compiled = CompiledQuery(node)

    def holds(part: Node, doc: AnalyzedText) -> bool:
        if isinstance(part, Term):
            return _is_free(part) or compiled.matches(doc, part)
        if isinstance(part, Not):
            return not compiled.matches(doc, part.child)
        if isinstance(part, And):
            return all(holds(c, doc) for c in part.children)
        assert isinstance(part, Or)
        return any(holds(c, doc) for c in part.children)

    def admits(texts: Sequence[str]) -> bool:
        return holds(node, AnalyzedText.of(*texts))

    return admits


__all__ = ["Constraint", "compile_constraints"]
