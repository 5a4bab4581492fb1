"""The search query language, parsed once into a tree every backend compiles.

Grammar (operators are upper case; lower-case ``and``/``or``/``not`` are words)::

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary ("AND"? unary)*          # juxtaposition means AND
    unary    := "NOT" unary | "-" unary | primary
    primary  := "(" or_expr ")" | '"' phrase '"' ["*"] | word ["*"]

Words are tokenized like the index (letters and digits; anything else
separates), so ``e-mail`` is the phrase ``"e mail"`` and ``col:term`` the
phrase ``"col term"``: no backend syntax can leak through. Every input either
parses or raises :class:`QuerySyntaxError` saying what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from engram.errors import QuerySyntaxError
from engram.search.text import tokens as text_tokens

MAX_QUERY_CHARS = 4096
MAX_TERMS = 64
MAX_DEPTH = 16


@dataclass(frozen=True)
class Term:
    """One word or a quoted phrase: consecutive folded tokens; ``prefix`` marks ``*``.

    ``quoted`` tells a phrase the user quoted from a word that tokenizes into
    several (``Caroline's``, ``e-mail``); the two match alike, but only a quoted
    phrase is demanded of hits found by meaning (:mod:`engram.search.constraints`).
    """

    tokens: tuple[str, ...]
    prefix: bool = False
    quoted: bool = field(default=False, compare=False)

    @property
    def is_phrase(self) -> bool:
        return len(self.tokens) > 1


@dataclass(frozen=True)
class And:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    child: "Node"


Node = Union[Term, And, Or, Not]

_OPERATORS = {"AND", "OR", "NOT"}


@dataclass(frozen=True)
class _Token:
    kind: str  # WORD, PHRASE, AND, OR, NOT, NEG, LPAREN, RPAREN
    text: str
    pos: int
    prefix: bool = False


def _lex(query: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            out.append(_Token("LPAREN", ch, i))
            i += 1
        elif ch == ")":
            out.append(_Token("RPAREN", ch, i))
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError(
                    f'unclosed quote at position {i}: close the phrase with " or remove the quote'
                )
            prefix = end + 1 < n and query[end + 1] == "*"
            out.append(_Token("PHRASE", query[i + 1 : end], i, prefix))
            i = end + 2 if prefix else end + 1
        elif ch == "-" and i + 1 < n and not query[i + 1].isspace():
            out.append(_Token("NEG", ch, i))
            i += 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in '()"':
                i += 1
            word = query[start:i]
            if word in _OPERATORS:
                out.append(_Token(word, word, start))
            else:
                prefix = word.endswith("*")
                out.append(_Token("WORD", word.rstrip("*"), start, prefix))
    return out


class _Parser:
    def __init__(self, toks: list[_Token]):
        self.toks = toks
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node | None:
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            # Only an unmatched ")" can stop or_expr early.
            raise QuerySyntaxError(f"unmatched ')' at position {tok.pos}: remove it or add '('")
        return node

    def or_expr(self) -> Node | None:
        parts = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            if self._at_end_of_group():
                raise QuerySyntaxError(f"OR at position {tok.pos} needs a term after it")
            parts.append(self.and_expr())
        if len(parts) > 1 and parts[0] is None:
            raise QuerySyntaxError("OR needs a term before it")
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else Or(tuple(kept))

    def and_expr(self) -> Node | None:
        parts: list[Node | None] = []
        while (tok := self.peek()) is not None and tok.kind not in ("OR", "RPAREN"):
            if tok.kind == "AND":
                self.take()
                if not parts:
                    raise QuerySyntaxError(f"AND at position {tok.pos} needs a term before it")
                if self._at_end_of_group():
                    raise QuerySyntaxError(f"AND at position {tok.pos} needs a term after it")
                continue
            parts.append(self.unary())
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else And(tuple(kept))

    def unary(self) -> Node | None:
        # Count negations in a loop, not by recursion: "- - - ... a" of any
        # length within MAX_QUERY_CHARS must not exhaust the Python stack.
        negations = 0
        while (tok := self.peek()) is not None and tok.kind in ("NOT", "NEG"):
            self.take()
            if self._at_end_of_group():
                raise QuerySyntaxError(
                    f"{tok.text} at position {tok.pos} needs a term after it to exclude"
                )
            negations += 1
        child = self.primary()
        if child is None or negations % 2 == 0:
            return child
        return child.child if isinstance(child, Not) else Not(child)

    def primary(self) -> Node | None:
        tok = self.take()
        if tok.kind == "LPAREN":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QuerySyntaxError(f"parentheses nest deeper than {MAX_DEPTH} levels")
            node = self.or_expr()
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                raise QuerySyntaxError(f"unclosed '(' at position {tok.pos}: add ')'")
            self.take()
            self.depth -= 1
            return node
        if tok.kind in ("WORD", "PHRASE"):
            toks = tuple(text_tokens(tok.text))
            return Term(toks, tok.prefix, quoted=tok.kind == "PHRASE") if toks else None
        raise QuerySyntaxError(f"unexpected {tok.text!r} at position {tok.pos}")

    def _at_end_of_group(self) -> bool:
        tok = self.peek()
        return tok is None or tok.kind in ("RPAREN", "OR", "AND")


def _check(node: Node, inside_or: bool = False) -> int:
    """Validate negation placement; return the number of terms."""
    if isinstance(node, Term):
        return 1
    if isinstance(node, Not):
        if inside_or:
            raise QuerySyntaxError(
                "an excluded term cannot be an alternative of OR: write 'a OR b -c' as '(a OR b) -c'"
            )
        return _check(node.child)
    if isinstance(node, Or):
        return sum(_check(c, inside_or=True) for c in node.children)
    if all(isinstance(c, Not) for c in node.children):
        raise QuerySyntaxError("a query cannot only exclude: add a term to search for")
    return sum(_check(c) for c in node.children)


def parse(query: str, *, max_terms: int | None = MAX_TERMS) -> Node:
    """Parse a user query into a tree.

    ``max_terms=None`` lifts the term limit, for a tree that is only tested
    against texts and never compiled whole (hybrid search's plain questions).

    Raises:
        QuerySyntaxError: the query is empty, malformed, too long, or only excludes.
    """
    if not isinstance(query, str):
        raise QuerySyntaxError(f"query must be a string, not {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(
            f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}"
        )
    node = _Parser(_lex(query)).parse()
    if node is None:
        raise QuerySyntaxError("query has no words to search for (letters or digits)")
    if isinstance(node, Not):
        raise QuerySyntaxError("a query cannot only exclude: add a term to search for")
    terms = _check(node)
    if max_terms is not None and terms > max_terms:
        raise QuerySyntaxError(f"query has {terms} terms; the limit is {max_terms}")
    return node


def positive_terms(node: Node) -> list[Term]:
    """The terms a match must (or may) contain: every term not under a NOT."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [t for c in node.children for t in positive_terms(c)]
