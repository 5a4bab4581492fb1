"""redis-py's errors in the engram error tree: the Redis table of ``_driver_errors``.

The Lua scripts report engram's own outcomes as Redis errors whose message
starts with a marker (``ENGRAM_NOT_FOUND ...``, ``ENGRAM_CONFLICT ...``); the
table turns those back into ``NotFound`` and ``Conflict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from engram.errors import BackendError, Conflict, NotFound
from engram.stores._driver_errors import DriverTable, Rule, message_matches

HOW_TO_START = (
    "start Redis (`sudo service redis-server start`, or `redis-server --daemonize yes`) "
    "or point ENGRAM_DATABASE_URL (or --db) at a running server"
)


def _not_found(exc: BaseException, action: str, context: Mapping[str, Any]) -> str:
    return str(exc).split("ENGRAM_NOT_FOUND", 1)[1].strip()


def _conflict(exc: BaseException, action: str, context: Mapping[str, Any]) -> str:
    return f"{action} violates a constraint: {str(exc).split('ENGRAM_CONFLICT', 1)[1].strip()}"


# The messages name the server (``where``).
REDIS_ERRORS = DriverTable(
    "redis",
    [
        Rule(
            (redis.ConnectionError, redis.TimeoutError), BackendError,
            "{action} failed: Redis at {where}: {first_line}; {how_to_start}",
        ),
        Rule(redis.ResponseError, NotFound, _not_found, when=message_matches("ENGRAM_NOT_FOUND")),
        Rule(redis.ResponseError, Conflict, _conflict, when=message_matches("ENGRAM_CONFLICT")),
        Rule(redis.RedisError, BackendError, "{action} failed: Redis at {where}: {first_line}"),
    ],
)
