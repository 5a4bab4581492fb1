"""Text analysis shared by every backend: tokens, case folding, stemming.

It mirrors SQLite's ``porter unicode61 remove_diacritics 2`` tokenizer, so a
query parsed here means the same thing in FTS5 and in the backends that score
text in Python (memory://, json://).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

# Letters and digits are token characters; everything else (punctuation,
# symbols, "_", controls, lone surrogates) separates tokens, as in unicode61.
_TOKEN = re.compile(r"[^\W_]+")
_stemmer = snowballstemmer.stemmer("porter")


def fold(token: str) -> str:
    """Lower-case a token and strip its diacritics (``Café`` -> ``cafe``)."""
    token = token.lower()
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Split text into tokens as written (not folded): what :func:`tokens` folds."""
    return _TOKEN.findall(text)


def tokens(text: str) -> list[str]:
    """Split text into folded (not stemmed) tokens."""
    return [fold(t) for t in _TOKEN.findall(text)]


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """Porter stem of a folded token (``running`` -> ``run``)."""
    return _stemmer.stemWord(token)


def stemmed_tokens(text: str) -> list[str]:
    """Tokens of ``text`` as the full-text index stores them."""
    return [stem(t) for t in tokens(text)]
