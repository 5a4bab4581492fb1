"""Runs of agents inside sessions on Redis (a mixin of ``RedisStore``).

Layout (``P`` is the store's prefix)::

    P:run:{id}                  hash  id, session_id, user_id, agent_id ("" = none), status,
                                      checkpoint_id ("" = none), created_at, updated_at
    P:runs                      zset  run ids of every session (score: created_at, µs)
    P:runs:session:{session_id} zset  the same, per session

Storing checks the session and the id inside one script; moving a run is a
compare-and-set of its status inside one script, so of callers racing to
resume a run (in any process) exactly one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engram._time import from_iso, to_iso
from engram.errors import NotFound
from engram.models import Run
from engram.stores.base import RunQuery, run_conflict
from engram.stores.redis import chat_lua as lua
from engram.stores.redis import layout as lay

PUT_RUN = lua.put_in_session("run")  # KEYS: session, run, runs, session's runs

# KEYS: run.  ARGV: status, checkpoint_id ("" = keep), updated_at, allowed statuses...
# Returns {'missing'}, {'conflict', status}, or {'ok', field, value, ...}.
MOVE_RUN = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {'missing'} end
local allowed = false
for i = 4, #ARGV do if ARGV[i] == current then allowed = true end end
if not allowed then return {'conflict', current} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[3])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'checkpoint_id', ARGV[2]) end""" + lua.RETURN_OK_HASH

# KEYS: runs.  ARGV: prefix, session ids...  Removes every run of those sessions.
DELETE_SESSION_RUNS = """
local n = 0
for i = 2, #ARGV do
  local index = ARGV[1] .. ':runs:session:' .. ARGV[i]
  for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    n = n + redis.call('DEL', ARGV[1] .. ':run:' .. id)
    redis.call('ZREM', KEYS[1], id)
  end
  redis.call('DEL', index)
end
return n
"""


def _run(h: dict[str, str]) -> Run:
    return Run.model_construct(
        id=h["id"],
        session_id=h["session_id"],
        user_id=h["user_id"] or None,
        agent_id=h["agent_id"] or None,
        status=h["status"],
        checkpoint_id=h["checkpoint_id"] or None,
        created_at=from_iso(h["created_at"]),
        updated_at=from_iso(h["updated_at"]),
    )


class RedisRuns:
    """Implements the run primitives of ``Store`` on Redis."""

    # Provided by RedisStore.
    _client: Any
    keys: lay.Keys
    _translated: Any
    _hashes: Any

    def _init_runs(self) -> None:
        self._put_run = self._client.register_script(PUT_RUN)
        self._move_run = self._client.register_script(MOVE_RUN)
        self._delete_session_runs = self._client.register_script(DELETE_SESSION_RUNS)

    def _run_key(self, run_id: str) -> str:
        return f"{self.keys.prefix}:run:{run_id}"

    def put_run(self, run: Run) -> None:
        r = run
        fields = [
            "id", r.id, "session_id", r.session_id, "user_id", r.user_id or "", "agent_id", r.agent_id or "",
            "status", r.status, "checkpoint_id", r.checkpoint_id or "", "created_at", to_iso(r.created_at),
            "updated_at", to_iso(r.updated_at),
        ]  # fmt: skip
        p = self.keys.prefix
        keys = [self.keys.session(r.session_id), self._run_key(r.id), f"{p}:runs", f"{p}:runs:session:{r.session_id}"]
        with self._translated("storing a run"):
            self._put_run(keys=keys, args=[r.id, r.session_id, lay.micros(r.created_at), *fields])

    def get_run(self, run_id: str) -> Run | None:
        with self._translated("reading a run"):
            h = self._client.hgetall(self._run_key(run_id))
        return _run(h) if h else None

    def list_runs(self, query: RunQuery) -> list[Run]:
        p = self.keys.prefix
        index = f"{p}:runs" if query.session_id is None else f"{p}:runs:session:{query.session_id}"
        with self._translated("listing runs"):
            ids = self._client.zrange(index, 0, -1)
            runs = [_run(h) for h in self._hashes([self._run_key(i) for i in ids]) if h]
        return query.select(runs)  # the index already holds only the session's runs

    def move_run(
        self, run_id: str, *, from_statuses: Sequence[str], status: str, checkpoint_id: str | None, now: datetime
    ) -> Run:
        with self._translated("moving a run"):
            reply = self._move_run(
                keys=[self._run_key(run_id)], args=[status, checkpoint_id or "", to_iso(now), *from_statuses]
            )
        if reply[0] == "missing":
            raise NotFound(f"run {run_id} does not exist")
        if reply[0] == "conflict":
            raise run_conflict(run_id, reply[1], from_statuses, status)
        return _run(dict(zip(reply[1::2], reply[2::2])))

    def _drop_session_runs(self, session_ids: Sequence[str]) -> int:
        """Remove the runs of sessions being deleted (call inside ``_translated``)."""
        if not session_ids:
            return 0
        return int(self._delete_session_runs(keys=[f"{self.keys.prefix}:runs"], args=[self.keys.prefix, *session_ids]))
