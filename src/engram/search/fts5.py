"""Compile a parsed query into an SQLite FTS5 MATCH expression.

Every token is emitted double-quoted and contains only letters and digits,
so nothing a user types reaches FTS5's own syntax.
"""

from __future__ import annotations

from engram.search.query import And, Node, Not, Or, Term

# Columns of the entries_fts table that hold text; the namespace column is
# matched separately so the namespace filter stays inside the index.
TEXT_COLUMNS = "{key content}"


def compile_fts5(node: Node) -> str:
    """Return the FTS5 expression for ``node`` (without column filters)."""
    if isinstance(node, Term):
        return '"' + " ".join(node.tokens) + '"' + ("*" if node.prefix else "")
    if isinstance(node, Or):
        return "(" + " OR ".join(compile_fts5(c) for c in node.children) + ")"
    if isinstance(node, And):
        pos = [c for c in node.children if not isinstance(c, Not)]
        neg = [c.child for c in node.children if isinstance(c, Not)]
        expr = " AND ".join(compile_fts5(c) for c in pos)
        if len(pos) > 1:
            expr = "(" + expr + ")"
        if neg:
            excluded = " OR ".join(compile_fts5(c) for c in neg)
            expr = f"({expr} NOT ({excluded}))"
        return expr
    raise TypeError(f"a bare NOT cannot be compiled: {node!r}")  # parse() forbids it


def match_expression(node: Node, namespace_token: str | None) -> str:
    """Full MATCH string: text columns, and the namespace token when scoped."""
    text = f"{TEXT_COLUMNS} : ({compile_fts5(node)})"
    if namespace_token is None:
        return text
    return f'ns : "{namespace_token}" AND {text}'
