"""Compile a parsed query into PostgreSQL ``tsquery`` text, and documents into ``tsvector`` text.

PostgreSQL's own parser and stemmers are not used: both sides are analysed
here by ``engram.search.text`` (the tokenizer and Porter stemmer every other
backend uses), so a query means the same on PostgreSQL as on SQLite and
``memory://``. The output is the *input syntax* of the ``tsquery`` and
``tsvector`` types, bound as a parameter and cast (``%s::tsquery``), never
spliced into SQL.

No user text can reach tsquery syntax: every lexeme is a stemmed token made of
letters and digits only, and it is single-quoted (with quotes and backslashes
escaped regardless) so ``&``, ``|``, ``!``, ``:`` or ``<->`` inside it would be
data. Operators: AND -> ``&``, OR -> ``|``, NOT -> ``!``, prefix -> ``:*``,
phrase -> ``<->`` between consecutive lexemes.

The namespace of a document is one extra lexeme in its tsvector that no query
word can produce or prefix-match (it starts with ``#``), so a namespaced
search is a single GIN index condition: ``tsv @@ ('#ns…' & (query))``.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b

from engram.search.query import And, Node, Not, Or, Term
from engram.search.text import fold, stem, words

# PostgreSQL limits (tsearch/ts_type.h): a lexeme is < 2 KiB, a position is at
# most 16383, a lexeme keeps at most 256 positions, a tsvector is < 1 MiB.
MAX_LEXEME_BYTES = 2046
MAX_POSITION = 16383
MAX_POSITIONS_PER_LEXEME = 256
MAX_TSVECTOR_BYTES = 1024 * 1024 - 64 * 1024  # headroom below the hard 1 MiB limit


def quote_lexeme(lexeme: str) -> str:
    """A lexeme in tsquery/tsvector input syntax: single-quoted, ``'`` and ``\\`` escaped."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def fit_lexeme(lexeme: str) -> str:
    """Cut a lexeme to what PostgreSQL accepts (the same cut on documents and queries)."""
    raw = lexeme.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_LEXEME_BYTES:
        return lexeme
    return raw[:MAX_LEXEME_BYTES].decode("utf-8", "ignore")


def lexeme(token: str) -> str:
    """The lexeme of a folded token: its Porter stem (the token itself where the
    stem is empty, e.g. ``s``, since a tsvector holds no empty lexeme), cut to fit."""
    return fit_lexeme(stem(token) or token)


def namespace_lexeme(namespace: str) -> str:
    """The lexeme naming ``namespace`` inside the tsvector.

    It starts with ``#``, which the tokenizer never emits, so no query word
    or prefix (``n*``) can match it; a 64-bit hash keeps it short.
    """
    digest = blake2b(namespace.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return "#" + digest


def _term(term: Term) -> str:
    stems = [quote_lexeme(lexeme(t)) for t in term.tokens]
    if term.prefix:
        stems[-1] += ":*"
    if len(stems) == 1:
        return stems[0]
    return "(" + " <-> ".join(stems) + ")"


def compile_tsquery(node: Node) -> str:
    """The tsquery text for a parsed query (``parse()`` guarantees no bare NOT)."""
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, Not):
        return "!" + compile_tsquery(node.child)
    if isinstance(node, Or):
        return "(" + " | ".join(compile_tsquery(c) for c in node.children) + ")"
    if isinstance(node, And):
        return "(" + " & ".join(compile_tsquery(c) for c in node.children) + ")"
    raise TypeError(f"not a query node: {node!r}")


def scoped_tsquery(node: Node, namespace: str | None) -> str:
    """The tsquery that selects: the query, inside ``namespace`` when one is given."""
    text = compile_tsquery(node)
    if namespace is None:
        return text
    return f"{quote_lexeme(namespace_lexeme(namespace))} & {text}"


@lru_cache(maxsize=1 << 17)
def _indexed(word: str) -> tuple[str, int]:
    """A token as written -> its quoted lexeme and the lexeme's stored size (bytes + 8 of header).

    One lookup per token instead of folding, stemming, cutting and quoting it
    again: the text analysis was most of a bulk upsert's time on PostgreSQL.
    """
    token = fold(word)
    # Every Porter rule removes or rewrites a suffix of letters: a token ending in a
    # digit is its own stem. Such tokens are mostly unique (ids, numbers in keys),
    # so they miss the cache and the pure-Python stemmer was half of a bulk upsert.
    lex = fit_lexeme(token) if token[-1] in _DIGITS else lexeme(token)
    return quote_lexeme(lex), len(lex.encode("utf-8", "surrogatepass")) + 8


_DIGITS = frozenset("0123456789")


@lru_cache(maxsize=4096)
def _namespace_part(namespace: str) -> str:
    return quote_lexeme(namespace_lexeme(namespace))


def document_tsvector(namespace: str, *texts: str) -> str:
    """The tsvector text of a document: its stemmed tokens with positions, plus the namespace lexeme.

    Fields (``texts``) are separated by a gap in positions, so a phrase never
    spans two. Texts so large that their tsvector would pass PostgreSQL's
    1 MiB limit keep their first lexemes (in order of appearance) up to it.
    """
    ns = _namespace_part(namespace)
    positions: dict[str, list[int]] = {}  # quoted lexeme -> positions
    sizes: dict[str, int] = {}
    # An upper bound of the stored size (a repeated lexeme counted each time): a
    # document under the limit by it needs no cut, which is nearly every document.
    bound = len(ns)
    pos = 0
    for text in texts:
        for word in words(text):
            pos += 1
            if pos > MAX_POSITION:
                pos = MAX_POSITION  # PostgreSQL clamps too; the lexeme is still indexed
            quoted, size = _indexed(word)
            bound += size + 2
            found = positions.get(quoted)
            if found is None:
                positions[quoted] = [pos]
                sizes[quoted] = size
            elif len(found) < MAX_POSITIONS_PER_LEXEME and found[-1] != pos:
                found.append(pos)
        pos += 1
    parts = [ns]
    if bound <= MAX_TSVECTOR_BYTES:
        for quoted, where in positions.items():
            parts.append(f"{quoted}:{where[0]}" if len(where) == 1 else quoted + ":" + ",".join(map(str, where)))
        return " ".join(parts)
    total = len(ns)
    for quoted, where in positions.items():
        total += sizes[quoted] + 2 * len(where)  # stored: lexeme bytes + 8 of header + 2 a position
        if total > MAX_TSVECTOR_BYTES:
            break
        parts.append(quoted + ":" + ",".join(map(str, where)))
    return " ".join(parts)
