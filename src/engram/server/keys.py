"""API keys: random, shown once, stored as a SHA-256 digest, recognised by a visible prefix.

A generated key reads ``engram_<12 hex id>_<43 url-safe characters>`` (256 random
bits). SHA-256 without salt or stretching is the right hash here: the key is
random and high-entropy, so there is nothing to brute-force, and a lookup by
digest stays one indexed read per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "engram"
# Anything a key could be: printable ASCII without spaces, of a sane length.
_PLAUSIBLE = re.compile(r"^[\x21-\x7e]{20,512}$")
_GENERATED_PREFIX = re.compile(rf"^({KEY_PREFIX}_[0-9a-f]{{12}})_")


@dataclass(frozen=True, slots=True)
class NewKey:
    plaintext: str  # shown once, never stored
    id: str
    prefix: str  # visible in listings: engram_<id>
    digest: str


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def generate() -> NewKey:
    key_id = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(plaintext=plaintext, id=key_id, prefix=f"{KEY_PREFIX}_{key_id}", digest=digest(plaintext))


def from_plaintext(plaintext: str) -> NewKey:
    """A key chosen by the operator (``ENGRAM_ADMIN_KEY``); its prefix shows none of it."""
    d = digest(plaintext)
    key_id = d[:12]
    return NewKey(plaintext=plaintext, id=key_id, prefix=f"env_{key_id}", digest=d)


def is_plausible(text: str) -> bool:
    """False for text that cannot be a key at all (the caller answers 'malformed')."""
    return bool(_PLAUSIBLE.match(text))


def visible_prefix(text: str | None) -> str | None:
    """The ``engram_<id>`` prefix of something shaped like a generated key, else None.

    It names the key a guesser is after, so failures can be limited per key as
    well as per address. An operator-chosen key shows no prefix to count by.
    """
    match = _GENERATED_PREFIX.match(text or "")
    return match.group(1) if match else None
