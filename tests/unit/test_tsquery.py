"""The PostgreSQL tsquery/tsvector compiler: pure functions, no database."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engram.errors import QuerySyntaxError
from engram.search.query import parse
from engram.search.text import stem, tokens
from engram.search.tsquery import (
    MAX_LEXEME_BYTES,
    MAX_POSITION,
    MAX_POSITIONS_PER_LEXEME,
    MAX_TSVECTOR_BYTES,
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


def _reference_tsvector(namespace: str, *texts: str) -> str:
    """document_tsvector as first written (every token folded, stemmed, cut and quoted in
    turn): stored tsvectors were built by it, so the faster one must give the same text."""
    positions: dict[str, list[int]] = {}
    pos = 0
    for text in texts:
        for token in tokens(text):
            pos = min(pos + 1, MAX_POSITION)
            lex = lexeme(token)
            found = positions.get(lex)
            if found is None:
                positions[lex] = [pos]
            elif len(found) < MAX_POSITIONS_PER_LEXEME and found[-1] != pos:
                found.append(pos)
        pos += 1
    parts = [quote_lexeme(namespace_lexeme(namespace))]
    size = len(parts[0])
    for lex, where in positions.items():
        size += len(lex.encode("utf-8", "surrogatepass")) + 2 * len(where) + 8
        if size > MAX_TSVECTOR_BYTES:
            break
        parts.append(quote_lexeme(lex) + ":" + ",".join(map(str, where)))
    return " ".join(parts)


_WORDS = st.sampled_from(
    ["Running", "runs", "RUN", "café", "Cafe\u0301", "ﬁsh", "s", "it's", "x" * 3000, "ΟΔΟΣ", "日本語", "v2", "Ⅻ1"]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.lists(st.one_of(st.text(max_size=60), st.lists(_WORDS).map(" ".join)), max_size=3))
def test_document_tsvector_is_the_text_stored_tsvectors_were_built_with(namespace, texts):
    assert document_tsvector(namespace, *texts) == _reference_tsvector(namespace, *texts)


@pytest.mark.parametrize(
    "texts",
    [
        ("", " ".join(["same"] * 1000)),
        ("k", " ".join(f"w{i}" for i in range(20_000))),  # positions clamped at 16383
        ("", " ".join(f"w{i}" for i in range(300_000))),  # cut at the size limit
        ("", " ".join(("y" * 2100 + str(i)) for i in range(480))),  # long lexemes, just over the limit
        ("", " ".join(["z" * 2100] * 600)),  # over by the bound, far under in fact: nothing cut
    ],
    ids=["repeats", "clamped", "cut", "long-lexemes", "long-repeats"],
)
def test_document_tsvector_matches_the_reference_at_the_limits(texts):
    assert document_tsvector("ns", *texts) == _reference_tsvector("ns", *texts)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"[a-z0-9]*(ies|sses|ss|s|eed|ed|ing|y|e|ll|ational|iveness|izer|ic|ful)?[0-9]", fullmatch=True))
def test_a_token_ending_in_a_digit_is_its_own_stem(token):
    # document_tsvector skips the stemmer for these (every Porter rule rewrites letters).
    assert stem(token) == token
