"""Message vectors of the Redis backend (mixed into ``RedisStore``; capability MESSAGE_VECTOR).

Keys (listed with the rest in :mod:`engram.stores.redis.layout`): the hash
``P:msgvec`` maps a message's ``seq`` to its vector (base64 of little-endian
float32), under the store's one model ``P:vec:model``; ``P:msgvec:seq`` /
``P:msgvec:log`` / ``P:msgvec:log:floor`` are the change counter and log. A
vector is written only while its message still holds the content embedded;
the message-deleting scripts (history deletion, prune, deleted sessions)
drop the vectors of the messages they remove and log that (``log_removals``
in :mod:`engram.stores.redis.chat_lua`). Searches run on the in-process
engine (see :mod:`engram.stores._vector_log`); a session/user scope is
read from the conversation's client-side scope cache (seq -> id, session,
user), kept coherent by the removal log.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from engram.models import Message
from engram.stores._vector_log import CHANGE_LOG_KEEP, LoggedMessageVectors, model_mismatch
from engram.stores.base import MessageVectorItem, VectorModel
from engram.stores.redis.vectors import RECORD_MODEL_LUA

# ARGV: P (the prefix), model name, dimensions, log records to keep,
#       then per vector: message id, content, vector (base64).
# Returns the number stored, or {-1, name, dimensions} when the store holds another model.
PUT_MESSAGE_VECTORS = (
    """
local P, keep = ARGV[1], tonumber(ARGV[4])
local mk = P .. ':vec:model'
"""
    + RECORD_MODEL_LUA
    + """local mv, log = P .. ':msgvec', P .. ':msgvec:log'
local stored = 0
for i = 5, #ARGV, 3 do
  local msg = redis.call('HMGET', P .. ':msg:' .. ARGV[i], 'content', 'seq')
  if msg[1] == ARGV[i + 1] and msg[2] then
    redis.call('HSET', mv, msg[2], ARGV[i + 2])
    redis.call('ZADD', log, redis.call('INCR', P .. ':msgvec:seq'), msg[2])
    stored = stored + 1
  end
end
local size = redis.call('ZCARD', log)
if size > keep then
  local cut = redis.call('ZRANGE', log, size - keep - 1, size - keep - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', log, 0, size - keep - 1)
  redis.call('SET', P .. ':msgvec:log:floor', cut[2])
end
return stored
"""
)

BATCH = 500  # vectors per script call


class RedisMessageVectors(LoggedMessageVectors):
    """The MESSAGE_VECTOR primitives of ``RedisStore``; uses its client, keys, ``_translated``."""

    _client: Any
    keys: Any
    url: str
    _translated: Any
    _message_index_lock: Any
    _sync_message_index: Any
    _load_messages: Any

    def _mv_key(self, suffix: str = "") -> str:
        return f"{self.keys.prefix}:msgvec{suffix}"

    def _mv_script(self) -> Any:
        script = self.__dict__.get("_put_message_vectors_script")
        if script is None:
            script = self.__dict__.setdefault(
                "_put_message_vectors_script", self._client.register_script(PUT_MESSAGE_VECTORS)
            )
        return script

    def get_message_vectors(self, message_ids: Sequence[str]) -> dict[str, Any]:
        ids = list(message_ids)
        if not ids:
            return {}
        with self._translated("reading message vectors"):
            pipe = self._client.pipeline(transaction=False)
            for i in ids:
                pipe.hget(f"{self.keys.prefix}:msg:{i}", "seq")
            seqs = pipe.execute()
            having = [(i, s) for i, s in zip(ids, seqs) if s is not None]
            found = self._client.hmget(self._mv_key(), [s for _, s in having]) if having else []
        return {
            i: np.frombuffer(base64.b64decode(v), dtype="<f4").copy() for (i, _), v in zip(having, found) if v
        }

    def put_message_vectors(self, items: Sequence[MessageVectorItem], *, model: VectorModel) -> int:
        stored = 0
        for start in range(0, len(items), BATCH):
            args: list[Any] = [self.keys.prefix, model.name, str(model.dimensions), str(CHANGE_LOG_KEEP)]
            for i in items[start : start + BATCH]:
                args += [
                    i.message_id,
                    i.content,
                    base64.b64encode(np.ascontiguousarray(i.vector, dtype="<f4").tobytes()).decode("ascii"),
                ]
            with self._translated(f"storing {len(items)} message vectors"):
                result = self._mv_script()(keys=[], args=args)
            if isinstance(result, list):
                raise model_mismatch(self.url, VectorModel(result[1], int(result[2])), model)
            stored += int(result)
        return stored

    def clear_vectors(self) -> int:
        with self._translated("dropping message vectors"):
            n = int(self._client.hlen(self._mv_key()))
            self._client.delete(self._mv_key(), self._mv_key(":log"))
            # Every process's message index is behind the log now: they reload.
            self._client.set(self._mv_key(":log:floor"), self._client.incr(self._mv_key(":seq")))
        self._mv_forget()
        return n + super().clear_vectors()  # type: ignore[misc]

    def messages_without_vectors(self, *, batch_size: int = 256) -> Iterator[list[Message]]:
        position = 0
        while True:
            with self._translated("reading messages to embed"):
                pairs = self._client.zrange(self.keys.messages, position, position + batch_size - 1, withscores=True)
                if not pairs:
                    return
                seqs = [str(int(score)) for _, score in pairs]
                has = self._client.hmget(self._mv_key(), seqs)
                batch = [m for m in self._load_messages([i for (i, _), v in zip(pairs, has) if not v]) if m.content]
            position += len(pairs)
            if batch:
                yield batch

    # -- the primitives of LoggedMessageVectors ------------------------------------------
    def _mv_head(self) -> tuple[int, int | None]:
        with self._translated("reading message vector changes"):
            newest, floor = self._client.mget([self._mv_key(":seq"), self._mv_key(":log:floor")])
        return int(newest or 0), None if floor is None else int(float(floor)) + 1

    def _mv_changes(self, after: int, upto: int) -> list[int]:
        with self._translated("reading message vector changes"):
            return [int(s) for s in self._client.zrangebyscore(self._mv_key(":log"), f"({after}", upto)]

    def _mv_vectors(self, seqs: Sequence[int] | None) -> list[tuple[int, bytes]]:
        with self._translated("loading message vectors"):
            if seqs is None:
                return [(int(k), base64.b64decode(v)) for k, v in self._client.hgetall(self._mv_key()).items()]
            seqs = list(seqs)
            if not seqs:
                return []
            found = self._client.hmget(self._mv_key(), [str(s) for s in seqs])
        return [(s, base64.b64decode(v)) for s, v in zip(seqs, found) if v]

    def _mv_scope(self, session_id: str | None, user_id: str | None) -> list[int]:
        with self._translated("scoping messages"), self._message_index_lock:
            scope = self._sync_message_index().scope
            return [
                seq
                for seq, (_, session, user) in scope.items()
                if (session_id is None or session == session_id) and (user_id is None or user == user_id)
            ]

    def _mv_messages(self, seqs: Sequence[int]) -> dict[int, Message]:
        with self._translated("reading messages"):
            with self._message_index_lock:
                scope = self._sync_message_index().scope
                ids = [scope[s][0] for s in seqs if s in scope]
            return {m.seq: m for m in self._load_messages(ids)}

    def _mv_count(self) -> int:
        with self._translated("counting message vectors"):
            return int(self._client.hlen(self._mv_key()))
