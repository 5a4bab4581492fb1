"""Capabilities a backend may declare in ``Store.capabilities``.

The conformance suite skips exactly the tests of capabilities a backend lacks, and
the docs table (docs/backends.md) is built from these.
"""

FTS = "fts"  # full-text search with the query language
MULTIPROCESS = "multiprocess"  # several processes may share one store safely
PERSISTENT = "persistent"  # data outlives the process
VACUUM = "vacuum"  # vacuum() reclaims space
VECTOR = "vector"  # stores embeddings and searches them by cosine similarity
CONVERSATION = "conversation"  # messages, summaries, profiles, checkpoints (the *_message(s)... primitives)
MESSAGE_VECTOR = "message_vector"  # embeds chat messages and searches them by meaning (vector / hybrid message search)
