"""The FTS5 compiler: a pure function from a query tree to a MATCH string."""

from __future__ import annotations

import re

import pytest

from engram.search.fts5 import TEXT_COLUMNS, compile_fts5, match_expression
from engram.search.query import And, Not, Or, Term, parse


@pytest.mark.parametrize(
    "query, expected",
    [
        ("fox", '"fox"'),
        ("Fox*", '"fox"*'),
        ('"quick brown"', '"quick brown"'),
        ('"quick bro"*', '"quick bro"*'),
        ("quick fox", '("quick" AND "fox")'),
        ("a AND b AND c", '("a" AND "b" AND "c")'),
        ("a OR b", '("a" OR "b")'),
        ("a b OR c", '(("a" AND "b") OR "c")'),
        ("a -b", '("a" NOT ("b"))'),
        ("a NOT b", '("a" NOT ("b"))'),
        ("-b a", '("a" NOT ("b"))'),  # exclusions go last: FTS5 NOT is binary
        ("a b -c -d", '(("a" AND "b") NOT ("c" OR "d"))'),
        ("(a OR b) -c", '(("a" OR "b") NOT ("c"))'),
        ("a -(b OR c)", '("a" NOT (("b" OR "c")))'),
        ("(a -b) OR c", '(("a" NOT ("b")) OR "c")'),
        ("e-mail", '"e mail"'),
        ("col:term", '"col term"'),
        ("NEAR(a b)", '("near" AND ("a" AND "b"))'),
    ],
)
def test_compile(query, expected):
    assert compile_fts5(parse(query)) == expected


def test_tokens_are_always_quoted():
    expr = compile_fts5(parse('x:y^z "a*b" c* -NEAR(d) (e OR f)'))
    bare = re.sub(r'"[^"]*"', "", expr)  # drop every quoted string
    assert set(bare) <= set("()* ANDORT"), expr
    assert ":" not in expr and "^" not in expr


def test_a_bare_not_cannot_be_compiled():
    with pytest.raises(TypeError, match="bare NOT"):
        compile_fts5(Not(Term(("a",))))


def test_tree_built_by_hand():
    tree = Or((And((Term(("a",)), Term(("b", "c"), True))), Term(("d",))))
    assert compile_fts5(tree) == '(("a" AND "b c"*) OR "d")'


def test_match_expression_without_namespace():
    assert match_expression(parse("a b"), None) == f'{TEXT_COLUMNS} : (("a" AND "b"))'
    assert TEXT_COLUMNS == "{key content}"


def test_match_expression_puts_the_namespace_inside_the_index_match():
    expr = match_expression(parse("a OR b"), "1234567890")
    assert expr == 'ns : "1234567890" AND {key content} : (("a" OR "b"))'


def test_compile_is_pure():
    tree = parse("(a OR b) c -d")
    assert compile_fts5(tree) == compile_fts5(tree)
    assert tree == parse("(a OR b) c -d")
