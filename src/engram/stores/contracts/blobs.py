"""The blobs family: room for a record kind of large objects (the storage-layer issue's blobs).

Empty today, and already one of ``Store``'s bases, so adding the kind edits this module only
on the contract side: its methods (``put_blob``, ``get_blob``, ``iter_blobs``, ...), each
raising ``self._unsupported("blobs")`` by default, as the conversation family's do.
"""

from __future__ import annotations

from engram.stores.contracts.root import BackendRoot


class BlobRows(BackendRoot):
    """Blobs in and out (no methods yet; see the module docstring)."""
