"""The blob store: files and other large objects, content-addressed, per project (``memory.blobs``).

- :mod:`engram.blobs.store`: the engine every backend shares (streaming puts,
  hashing, limits, cleanup) — ``BlobStore``, what ``memory.blobs`` is;
- :mod:`engram.blobs.base`: the small contract of a backend;
- backends: :mod:`~engram.blobs.memory` (``in-memory``), :mod:`~engram.blobs.local`
  (``local``: a directory), :mod:`~engram.blobs.database` (``database``: SQLite or
  PostgreSQL rows);
- :mod:`engram.blobs.opening`: the backend the ``storage.blob_store`` settings choose;
- :mod:`engram.blobs.references`: which blobs live messages point at.
"""
