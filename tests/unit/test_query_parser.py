"""The query language parser: the tree of each operator and the message of each error."""

from __future__ import annotations

import pytest

from engram.errors import InvalidInput, QuerySyntaxError
from engram.search.query import MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS, And, Not, Or, Term, parse, positive_terms


def T(*tokens: str, prefix: bool = False) -> Term:
    return Term(tuple(tokens), prefix)


@pytest.mark.parametrize(
    "query, tree",
    [
        ("fox", T("fox")),
        ("  Fox  ", T("fox")),
        ("CAFÉ", T("cafe")),
        ("quick fox", And((T("quick"), T("fox")))),
        ("a b c", And((T("a"), T("b"), T("c")))),
        ("a AND b", And((T("a"), T("b")))),
        ("a AND b AND c", And((T("a"), T("b"), T("c")))),
        ("a OR b", Or((T("a"), T("b")))),
        ("a OR b OR c", Or((T("a"), T("b"), T("c")))),
        ("a b OR c", Or((And((T("a"), T("b"))), T("c")))),
        ("a OR b c", Or((T("a"), And((T("b"), T("c")))))),
        ("a AND b OR c AND d", Or((And((T("a"), T("b"))), And((T("c"), T("d")))))),
        ('"quick brown"', T("quick", "brown")),
        ('"Quick, Brown!"', T("quick", "brown")),
        ('"single"', T("single")),
        ("fox*", T("fox", prefix=True)),
        ('"quick bro"*', T("quick", "bro", prefix=True)),
        ("a -b", And((T("a"), Not(T("b"))))),
        ("a NOT b", And((T("a"), Not(T("b"))))),
        ("-b a", And((Not(T("b")), T("a")))),
        ("a --b", And((T("a"), T("b")))),
        ("a NOT NOT b", And((T("a"), T("b")))),
        ("a -(-b)", And((T("a"), T("b")))),
        ("a -(b OR c)", And((T("a"), Not(Or((T("b"), T("c"))))))),
        ('a -"b c"', And((T("a"), Not(T("b", "c"))))),
        ("(a OR b) c", And((Or((T("a"), T("b"))), T("c")))),
        ("(a OR b) -c", And((Or((T("a"), T("b"))), Not(T("c"))))),
        ("((a))", T("a")),
        ("(a b)", And((T("a"), T("b")))),
        ("a (b c)", And((T("a"), And((T("b"), T("c")))))),
        ("(a -b) OR c", Or((And((T("a"), Not(T("b")))), T("c")))),
        # lower-case operators are plain words
        ("cats and dogs", And((T("cats"), T("and"), T("dogs")))),
        ("this or that", And((T("this"), T("or"), T("that")))),
        ("not now", And((T("not"), T("now")))),
        # punctuation separates tokens: no backend syntax survives
        ("e-mail", T("e", "mail")),
        ("col:term", T("col", "term")),
        ("snake_case", T("snake", "case")),
        ("^caret", T("caret")),
        ("NEAR(a b)", And((T("near"), And((T("a"), T("b")))))),
        ("a - b", And((T("a"), T("b")))),  # a dash alone is no operator
        ("a !!! b", And((T("a"), T("b")))),  # a word without letters drops out
        ("a OR ???", T("a")),
        ("404", T("404")),
        ("x\x00y", T("x", "y")),
        ("x\ud800y", T("x", "y")),
    ],
)
def test_tree(query, tree):
    assert parse(query) == tree


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "query has no words to search for (letters or digits)"),
        ("   \t\n", "query has no words to search for (letters or digits)"),
        ("*", "query has no words to search for (letters or digits)"),
        ("()", "query has no words to search for (letters or digits)"),
        ('""', "query has no words to search for (letters or digits)"),
        ("\x00", "query has no words to search for (letters or digits)"),
        ('"open', 'unclosed quote at position 0: close the phrase with " or remove the quote'),
        ('a "b', 'unclosed quote at position 2: close the phrase with " or remove the quote'),
        ("(a", "unclosed '(' at position 0: add ')'"),
        ("a (b (c)", "unclosed '(' at position 2: add ')'"),
        ("a)", "unmatched ')' at position 1: remove it or add '('"),
        (")", "unmatched ')' at position 0: remove it or add '('"),
        ("AND", "AND at position 0 needs a term before it"),
        ("AND b", "AND at position 0 needs a term before it"),
        ("a AND", "AND at position 2 needs a term after it"),
        ("a AND OR b", "AND at position 2 needs a term after it"),
        ("(a AND) b", "AND at position 3 needs a term after it"),
        ("OR", "OR at position 0 needs a term after it"),
        ("OR b", "OR needs a term before it"),
        ("a OR", "OR at position 2 needs a term after it"),
        ("a OR OR b", "OR at position 2 needs a term after it"),
        ("(a OR)", "OR at position 3 needs a term after it"),
        ("NOT", "NOT at position 0 needs a term after it to exclude"),
        ("a NOT", "NOT at position 2 needs a term after it to exclude"),
        ("a (b -)", "- at position 5 needs a term after it to exclude"),
        ("-a", "a query cannot only exclude: add a term to search for"),
        ("NOT a", "a query cannot only exclude: add a term to search for"),
        ("-a -b", "a query cannot only exclude: add a term to search for"),
        ("(-a -b) OR c", "a query cannot only exclude: add a term to search for"),
        ("a -(-b -c)", "a query cannot only exclude: add a term to search for"),
        ("a OR -b", "an excluded term cannot be an alternative of OR: write 'a OR b -c' as '(a OR b) -c'"),
        ("(-a) OR b", "an excluded term cannot be an alternative of OR: write 'a OR b -c' as '(a OR b) -c'"),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), f"parentheses nest deeper than {MAX_DEPTH} levels"),
        ("x" * (MAX_QUERY_CHARS + 1), f"query is {MAX_QUERY_CHARS + 1} characters; the limit is {MAX_QUERY_CHARS}"),
        (" ".join(["w"] * (MAX_TERMS + 1)), f"query has {MAX_TERMS + 1} terms; the limit is {MAX_TERMS}"),
    ],
)
def test_error_message(query, message):
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    assert str(info.value) == message
    assert isinstance(info.value, InvalidInput)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("query", [None, 42, b"fox", ["fox"]])
def test_non_string_query(query):
    with pytest.raises(QuerySyntaxError, match="query must be a string"):
        parse(query)


def test_limits_are_inclusive():
    assert parse("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH) == T("a")
    assert parse("a" + " " * (MAX_QUERY_CHARS - 1)) == T("a")
    many = parse(" ".join(f"w{i}" for i in range(MAX_TERMS)))
    assert isinstance(many, And) and len(many.children) == MAX_TERMS


def test_very_long_negation_chains_parse_without_recursion():
    # Regression: each "-" used to be one Python stack frame (RecursionError).
    assert parse("-" * (MAX_QUERY_CHARS - 2) + "a") == T("a")  # an even number of dashes
    assert parse("b " + "-" * (MAX_QUERY_CHARS - 3) + "a") == And((T("b"), Not(T("a"))))
    assert parse("b " + "NOT " * 1000 + "a") == And((T("b"), T("a")))


def test_excluded_terms_count_towards_the_term_limit():
    query = "a " + " ".join(f"-w{i}" for i in range(MAX_TERMS))
    with pytest.raises(QuerySyntaxError, match="terms; the limit"):
        parse(query)


def test_is_phrase():
    assert T("a", "b").is_phrase
    assert not T("a").is_phrase


def test_positive_terms_skip_excluded_ones():
    tree = parse('(a OR "b c"*) d -e -(f OR g)')
    assert positive_terms(tree) == [T("a"), T("b", "c", prefix=True), T("d")]


def test_trees_are_immutable_and_hashable():
    tree = parse("a (b OR c) -d")
    assert hash(tree) == hash(parse("a (b OR c) -d"))
    with pytest.raises(AttributeError):
        tree.children = ()  # type: ignore[misc]
