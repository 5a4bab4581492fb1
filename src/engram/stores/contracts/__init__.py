"""Small contracts, one per family of records, that ``engram.stores.base.Store`` composes.

- ``entries.EntryRows``: entries (key/value in namespaces, expiry, full-text search)
- ``sessions.SessionRows``: sessions and tasks
- ``conversation.ConversationRows``: messages, summaries, profiles, checkpoints, runs
- ``vectors.VectorRows``: entry and message vectors (the rows the one vector engine reads)
- ``blobs.BlobRows``: room for blobs (empty until the kind is added)
- ``root.BackendRoot``: what they share (url, capabilities, counts, the ``Unsupported`` errors)

Another new family is one more module here with a ``...Rows(BackendRoot)`` class whose methods
raise ``self._unsupported(...)`` by default, added to ``Store``'s bases.
"""
