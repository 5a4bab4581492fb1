"""The JSON-files backend (``json:///dir``): an in-memory store saved as one JSON file per
record kind after every write.

Modules: ``store`` (the Store, URL, file writing), ``chat``, ``vectors``, ``message_vectors``.
"""

from engram.stores.jsonfiles.store import JsonStore, parse_json_url

__all__ = ["JsonStore", "parse_json_url"]
