"""The Redis backend (``redis://...``): hashes and sorted sets under one key prefix, atomic
writes as Lua scripts.

Modules: ``store`` (the Store, client, URL), ``layout`` (every key, drawn once), ``chat`` and
``chat_lua`` (conversation records and their scripts), ``runs``, ``vectors``,
``message_vectors``, ``errors`` (the redis-py error table).
"""

from engram.stores.redis.store import RedisStore, parse_redis_url

__all__ = ["RedisStore", "parse_redis_url"]
