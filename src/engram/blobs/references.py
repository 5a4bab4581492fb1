"""Which blobs the live records of a store point at (``cleanup`` keeps those).

A message attachment whose ``uri`` is ``blob:<id>`` references that blob.
The messages are read when a cleanup runs (rarely), not indexed on every
write: deleting or pruning the last message that names a blob is all it
takes to make the blob eligible.
"""

from __future__ import annotations

from engram.blobs._ids import URI_PREFIX, is_blob_uri
from engram.stores.base import CONVERSATION, Store


def referenced_blob_ids(store: Store) -> set[str]:
    """The ids of blobs that messages of ``store`` attach (nothing on a backend without messages)."""
    if CONVERSATION not in store.capabilities:
        return set()
    found: set[str] = set()
    for message in store.iter_messages(batch_size=1000):
        for attachment in message.attachments:
            if is_blob_uri(attachment.uri):
                found.add(attachment.uri[len(URI_PREFIX) :])
    return found
