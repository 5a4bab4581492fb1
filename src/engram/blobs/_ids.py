"""What a blob id and a project name may be: strict patterns, checked before any path or query uses them.

A blob's id is the SHA-256 of its bytes in lowercase hex, so a valid id can
only ever name a file inside the store: no separator, no dot, no NUL.
"""

from __future__ import annotations

import re
from typing import Any

from engram.errors import InvalidInput
from engram.models import BlobRef

URI_PREFIX = "blob:"
_BLOB_ID = re.compile(r"[0-9a-f]{64}")
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def blob_id(ref_or_id: Any) -> str:
    """The id named by a :class:`BlobRef`, a ``blob:<id>`` URI or a bare id.

    Raises:
        InvalidInput: not a blob id (64 lowercase hex digits, the SHA-256 of the bytes).
    """
    if isinstance(ref_or_id, BlobRef):
        value: Any = ref_or_id.id
    else:
        value = ref_or_id
    if isinstance(value, str) and value.startswith(URI_PREFIX):
        value = value[len(URI_PREFIX) :]
    if not isinstance(value, str) or not _BLOB_ID.fullmatch(value):
        shown = repr(value)[:80] if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"{shown} is not a blob id: give a BlobRef, 'blob:<id>' or the id itself "
            "(64 lowercase hex digits, as put() returned it)"
        )
    return value


def uri(blob_id: str) -> str:
    return URI_PREFIX + blob_id


def is_blob_uri(value: Any) -> bool:
    """Whether ``value`` is a ``blob:<id>`` URI naming a well-formed id."""
    return isinstance(value, str) and value.startswith(URI_PREFIX) and bool(_BLOB_ID.fullmatch(value[5:]))


def project_name(value: Any) -> str:
    """A project's name as the blob store's namespace: letters, digits, ``_`` and ``-``, up to 64.

    Raises:
        InvalidInput: anything else (a path, a dot, a NUL, an empty name).
    """
    if not isinstance(value, str) or not _PROJECT.fullmatch(value):
        raise InvalidInput(
            f"blob project {str(value)[:80]!r} is not valid: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return value
