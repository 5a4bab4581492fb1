"""The PostgreSQL tsquery/tsvector compiler: pure functions, no database."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engram.errors import QuerySyntaxError
from engram.search.query import parse
from engram.search.tsquery import (
    MAX_LEXEME_BYTES,
    compile_tsquery,
    document_tsvector,
    lexeme,
    namespace_lexeme,
    quote_lexeme,
    scoped_tsquery,
)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("running", "'run'"),
        ("Running FAST", "('run' & 'fast')"),
        ("a AND b", "('a' & 'b')"),
        ("cat OR dog", "('cat' | 'dog')"),
        ("cat -dog", "('cat' & !'dog')"),
        ("cat NOT dog", "('cat' & !'dog')"),
        ("eleph*", "'eleph':*"),
        ('"new york"', "('new' <-> 'york')"),
        ('"quick bro"*', "('quick' <-> 'bro':*)"),
        ("e-mail", "('e' <-> 'mail')"),
        ("col:term", "('col' <-> 'term')"),
        ("(cat OR dog) -(angry OR sofa)", "(('cat' | 'dog') & !('angri' | 'sofa'))"),
        ("Café", "'cafe'"),
        ("s", "'s'"),  # the Porter stem of "s" is empty: the token itself stands in
    ],
)
def test_compile(query, expected):
    assert compile_tsquery(parse(query)) == expected


def test_scoped_query_puts_the_namespace_lexeme_inside_the_condition():
    text = scoped_tsquery(parse("fox"), "user:42")
    assert text == f"'{namespace_lexeme('user:42')}' & 'fox'"
    assert scoped_tsquery(parse("fox"), None) == "'fox'"


def test_namespace_lexeme_cannot_be_produced_or_prefixed_by_a_query():
    ns = namespace_lexeme("default")
    assert ns.startswith("#") and re.fullmatch(r"#[0-9a-f]{16}", ns)
    assert namespace_lexeme("a") != namespace_lexeme("b")
    # Query lexemes are stems of letters and digits only: never '#', so no prefix reaches it.
    assert "#" not in compile_tsquery(parse("# #* ns* default*"))


def test_quoting_escapes_quotes_and_backslashes():
    assert quote_lexeme("it's") == "'it''s'"
    assert quote_lexeme("a\\b") == "'a\\\\b'"


def test_long_lexemes_are_cut_the_same_way_on_both_sides():
    word = "x" * 4000
    assert len(lexeme(word).encode()) <= MAX_LEXEME_BYTES
    assert compile_tsquery(parse(word)) == quote_lexeme(lexeme(word))
    assert quote_lexeme(lexeme(word)) in document_tsvector("ns", word)


def test_document_tsvector_positions_and_field_gap():
    tv = document_tsvector("ns", "my-key", "New York runners")
    assert tv.startswith(quote_lexeme(namespace_lexeme("ns")) + " ")
    # key tokens 1-2, a gap, content from 4: a phrase never spans key and content.
    assert "'my':1" in tv and "'kei':2" in tv and "'new':4" in tv and "'york':5" in tv and "'runner':6" in tv


def test_document_tsvector_repeats_and_limits():
    tv = document_tsvector("ns", "", " ".join(["same"] * 1000))
    positions = re.search(r"'same':([\d,]+)", tv).group(1).split(",")
    assert len(positions) == 256  # PostgreSQL keeps at most 256 positions of a lexeme
    huge = document_tsvector("ns", "", " ".join(f"w{i}" for i in range(300_000)))
    assert len(huge.encode()) < 1024 * 1024 * 2  # cut to stay under the 1 MiB tsvector limit


# Lexemes are quoted; outside quotes only the operators we emit may appear.
_OUTSIDE_QUOTES = re.compile(r"^[\s()&|!<\->:*]*$")


def _outside(text: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "", text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_input_compiles_to_operators_and_quoted_lexemes(text):
    try:
        node = parse(text)
    except QuerySyntaxError:
        return
    compiled = scoped_tsquery(node, "any namespace")
    assert _OUTSIDE_QUOTES.match(_outside(compiled)), compiled
