"""Which words of a hit's text a search query matched, for highlighting.

The query is read as search reads it (``keyword_query``: the query language,
or plain words), and a word of the text counts when its stem is a query term's
stem, or starts with a ``prefix*`` term's, as the full-text index matches.
The text is returned as ``(segment, matched)`` pairs: the template escapes each
segment and wraps the matched ones in ``<mark>``, so no markup is ever built
from stored text.
"""

from __future__ import annotations

import functools
import re

from engram.errors import QuerySyntaxError
from engram.search.hybrid import keyword_query
from engram.search.query import positive_terms
from engram.search.text import fold, stem

_WORD = re.compile(r"[^\W_]+")


@functools.lru_cache(maxsize=64)  # the search page asks once per hit of the same query
def query_stems(query: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """(whole-word stems, prefixes) of the words a match may contain; empty for an unreadable query."""
    try:
        node = keyword_query(query)
    except QuerySyntaxError:
        return frozenset(), ()
    if node is None:
        return frozenset(), ()
    words, prefixes = set(), []
    for term in positive_terms(node):
        for i, token in enumerate(term.tokens):
            if term.prefix and i == len(term.tokens) - 1:
                prefixes.append(token)
            else:
                words.add(stem(token))
    return frozenset(words), tuple(prefixes)


def segments(text: str, query: str, *, limit: int = 2000) -> list[tuple[str, bool]]:
    """``text`` (cut to ``limit`` characters) split into runs, each marked matched or not."""
    words, prefixes = query_stems(query)
    text = text if len(text) <= limit else text[:limit] + "…"
    if not words and not prefixes:
        return [(text, False)]
    out: list[tuple[str, bool]] = []
    at = 0
    for m in _WORD.finditer(text):
        token = fold(m.group())
        if stem(token) in words or any(token.startswith(p) for p in prefixes):
            if m.start() > at:
                out.append((text[at:m.start()], False))
            out.append((m.group(), True))
            at = m.end()
    if at < len(text):
        out.append((text[at:], False))
    return out
