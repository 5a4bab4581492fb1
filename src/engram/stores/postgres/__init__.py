"""The PostgreSQL backend (``postgresql://...``): a psycopg connection pool, one schema per store.

Modules: ``store`` (the Store, pool, URL), ``sql`` and ``chat_sql`` (schema migrations and
pure SQL builders), ``chat``, ``vectors``, ``message_vectors``, ``bulk``, ``errors`` (the
psycopg error table).
"""

from engram.stores.postgres.store import PostgresStore, parse_postgres_url

__all__ = ["PostgresStore", "parse_postgres_url"]
