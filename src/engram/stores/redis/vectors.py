"""Vector storage of the Redis backend (mixed into ``RedisStore``).

Keys (drawn with the rest in :mod:`engram.stores.redis.layout`): the vector
of an entry is the hash ``P:vec:{tail}`` (``vector``: base64 of
little-endian float32, ``hash``: hex blake2b-128 of the content embedded);
``P:ns:{ns}:vectors`` lists the tails of a namespace that have one;
``P:vec:model`` the model; ``P:vec:seq`` / ``P:vec:log`` /
``P:vec:log:floor`` the change counter and log.

A vector is written only while its entry still holds the content and context
embedded, and gets the entry's expiry; the entry scripts drop it when the entry
is deleted, pruned, or rewritten with other content or context, and log that change. Plain
Redis has no vector index, so searches run client-side on the in-process
index of :mod:`engram.stores._vector_log` (keys: 63 bits of blake2b of the
tail), which each process keeps coherent with the change log.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from engram.models import Entry
from engram.stores._filters import is_live, metadata_matches
from engram.stores._vector_log import CHANGE_LOG_KEEP, LoggedVectors, model_mismatch
from engram.stores.base import MetadataFilter, VectorItem, VectorModel
from engram.stores.redis.layout import TAIL_START, namespace_of_tail

# Records the model (ARGV[2], ARGV[3]) in the hash ``mk`` or returns {-1, name, dimensions} when
# the store holds another one: the first lines of both vector-writing scripts.
RECORD_MODEL_LUA = """
local m = redis.call('HMGET', mk, 'name', 'dimensions')
if not m[1] then
  redis.call('HSET', mk, 'name', ARGV[2], 'dimensions', ARGV[3])
elseif m[1] ~= ARGV[2] or m[2] ~= ARGV[3] then
  return {-1, m[1], m[2]}
end
"""

# ARGV: P ("prefix:"), model name, dimensions, log records to keep,
#       then per vector: tail, namespace, content, context ("" = none), hash of the text embedded (hex),
#       vector (base64).
# Returns the number stored, or {-1, name, dimensions} when the store holds another model.
PUT_VECTORS = (
    """
local P, keep = ARGV[1], tonumber(ARGV[4])
local mk = P .. 'vec:model'
"""
    + RECORD_MODEL_LUA
    + """local stored = 0
for i = 5, #ARGV, 6 do
  local tail, ns = ARGV[i], ARGV[i + 1]
  local ek = P .. 'entry:' .. tail
  local held = redis.call('HMGET', ek, 'content', 'context')
  if held[1] == ARGV[i + 2] and (held[2] or '') == ARGV[i + 3] then
    local vk = P .. 'vec:' .. tail
    redis.call('HSET', vk, 'vector', ARGV[i + 5], 'hash', ARGV[i + 4])
    local at = redis.call('PEXPIRETIME', ek)
    if at > 0 then redis.call('PEXPIREAT', vk, at) else redis.call('PERSIST', vk) end
    redis.call('SADD', P .. 'ns:' .. ns .. ':vectors', tail)
    redis.call('ZADD', P .. 'vec:log', redis.call('INCR', P .. 'vec:seq'), tail)
    stored = stored + 1
  end
end
local size = redis.call('ZCARD', P .. 'vec:log')
if size > keep then
  local cut = redis.call('ZRANGE', P .. 'vec:log', size - keep - 1, size - keep - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', P .. 'vec:log', 0, size - keep - 1)
  redis.call('SET', P .. 'vec:log:floor', cut[2])
end
return stored
"""
)

BATCH = 500  # vectors per script call


def vector_key(tail: str) -> int:
    """The integer key of an entry in the in-process index: 63 bits of blake2b of its tail."""
    return int.from_bytes(hashlib.blake2b(tail.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def _decode(text: str) -> bytes:
    return base64.b64decode(text)


class RedisVectors(LoggedVectors):
    """The VECTOR primitives of ``RedisStore``; uses its client, keys and ``_translated``."""

    _client: Any
    keys: Any
    url: str
    _translated: Any
    _hashes: Any
    _put_vectors_script: Any
    put_entries: Any
    _entry_args: Any
    _put_entry: Any
    _stored_entries: Any

    def _tails(self) -> dict[int, str]:
        return self.__dict__.setdefault("_vector_tails", {})

    def _remember(self, tail: str) -> int:
        key = vector_key(tail)
        self._tails()[key] = tail
        return key

    def vector_model(self) -> VectorModel | None:
        with self._translated("reading the vector model"):
            h = self._client.hgetall(self.keys.vector_model)
        return VectorModel(h["name"], int(h["dimensions"])) if h else None

    def _vector_args(self, items: Sequence[VectorItem], model: VectorModel) -> Iterator[list[Any]]:
        """The ARGV of PUT_VECTORS, one list per batch of items."""
        prefix = self.keys.prefix + ":"
        for start in range(0, len(items), BATCH):
            args: list[Any] = [prefix, model.name, str(model.dimensions), str(CHANGE_LOG_KEEP)]
            for i in items[start : start + BATCH]:
                args += [
                    self.keys.tail(i.namespace, i.key),
                    i.namespace,
                    i.content,
                    i.context or "",
                    i.digest.hex(),
                    base64.b64encode(np.ascontiguousarray(i.vector, dtype="<f4").tobytes()).decode("ascii"),
                ]
            yield args

    def _put_entries_and_vectors(
        self, entries: Sequence[Entry], vectors: Sequence[VectorItem], now: datetime, model: VectorModel
    ) -> list[Entry]:
        import redis

        batches = list(self._vector_args(vectors, model))
        with self._translated("storing entries with their vectors"), self._client.pipeline(transaction=True) as pipe:
            while True:
                # The model is checked under WATCH, so the scripts in the MULTI below cannot
                # find another one: the entries and their vectors are applied together or not at all.
                try:
                    pipe.watch(self.keys.vector_model)
                    h = pipe.hgetall(self.keys.vector_model)
                    if h and (h["name"], int(h["dimensions"])) != (model.name, model.dimensions):
                        raise model_mismatch(self.url, VectorModel(h["name"], int(h["dimensions"])), model)
                    pipe.multi()
                    for e in entries:
                        keys, args = self._entry_args(e, now)
                        self._put_entry(keys=keys, args=args, client=pipe)
                    for args in batches:
                        self._put_vectors_script(keys=[], args=args, client=pipe)
                    results = pipe.execute()
                    break
                except redis.WatchError:
                    continue  # the model was recorded meanwhile: check again
        return self._stored_entries(entries, results[: len(entries)])

    def put_vectors(self, items: Sequence[VectorItem], *, model: VectorModel) -> int:
        stored = 0
        for args in self._vector_args(items, model):
            with self._translated(f"storing {len(items)} vectors"):
                result = self._put_vectors_script(keys=[], args=args)
            if isinstance(result, list):
                raise model_mismatch(self.url, VectorModel(result[1], int(result[2])), model)
            stored += int(result)
        return stored

    def clear_vectors(self) -> int:
        n = 0
        with self._translated("dropping vectors"):
            for ns in self._client.smembers(self.keys.namespaces) | set(self._vector_namespaces_known()):
                tails = list(self._client.smembers(self.keys.ns_vectors(ns)))
                for i in range(0, len(tails), 1000):
                    n += self._client.delete(*(self.keys.vector(t) for t in tails[i : i + 1000]))
                self._client.delete(self.keys.ns_vectors(ns))
            self._client.delete(self.keys.vector_model, self.keys.vector_log)
            # Every process's index is behind the log now: they reload.
            self._client.set(self.keys.vector_log_floor, self._client.incr(self.keys.vector_seq))
        self._vl_forget()
        return n

    def _vector_namespaces_known(self) -> list[str]:
        return list(self._vector_engine().indexes)

    def get_vectors(self, idents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        if not idents:
            return {}
        with self._translated("reading vectors"):
            pipe = self._client.pipeline(transaction=False)
            for ns, key in idents:
                pipe.hget(self.keys.vector(self.keys.tail(ns, key)), "vector")
            found = pipe.execute()
        return {ident: np.frombuffer(_decode(v), dtype="<f4").copy() for ident, v in zip(idents, found) if v}

    def entries_without_vectors(self, namespace: str | None, *, batch_size: int = 256) -> Iterator[list[Entry]]:
        from engram.stores.redis.store import _entry

        index = self.keys.order if namespace is None else self.keys.ns_order(namespace)
        position = 0
        while True:
            with self._translated("reading entries to embed"):
                members = self._client.zrange(index, position, position + batch_size - 1)
                if not members:
                    return
                hashes = self._hashes([self.keys.entry_of_member(m) for m in members])
                pipe = self._client.pipeline(transaction=False)
                for m in members:
                    pipe.exists(self.keys.vector(m[TAIL_START:]))
                has = pipe.execute()
            position += len(members)
            batch = [_entry(h) for h, v in zip(hashes, has) if h and not v]
            if batch:
                yield batch

    # -- the primitives of LoggedVectors ---------------------------------------------
    def _vl_head(self) -> tuple[int, int | None]:
        with self._translated("reading vector changes"):
            newest, floor = self._client.mget([self.keys.vector_seq, self.keys.vector_log_floor])
        return int(newest or 0), None if floor is None else int(float(floor)) + 1

    def _vl_changes(self, after: int, upto: int) -> list[tuple[str, int]]:
        with self._translated("reading vector changes"):
            tails = self._client.zrangebyscore(self.keys.vector_log, f"({after}", upto)
        return [(namespace_of_tail(t), self._remember(t)) for t in tails]

    def _vl_vectors(self, namespace: str, keys: Sequence[int] | None) -> list[tuple[int, bytes]]:
        with self._translated("loading vectors"):
            if keys is None:
                tails = list(self._client.smembers(self.keys.ns_vectors(namespace)))
            else:
                known = self._tails()
                tails = [known[k] for k in keys if k in known]
            found: list[tuple[int, bytes]] = []
            for i in range(0, len(tails), 1000):
                part = tails[i : i + 1000]
                pipe = self._client.pipeline(transaction=False)
                for t in part:
                    pipe.hget(self.keys.vector(t), "vector")
                for t, v in zip(part, pipe.execute()):
                    if v:
                        found.append((self._remember(t), _decode(v)))
        return found

    def _vl_namespaces(self) -> list[str]:
        with self._translated("listing namespaces"):
            names = sorted(self._client.smembers(self.keys.namespaces))
            if not names:
                return []
            pipe = self._client.pipeline(transaction=False)
            for ns in names:
                pipe.scard(self.keys.ns_vectors(ns))
            return [ns for ns, n in zip(names, pipe.execute()) if n]

    def _vl_allowed(self, namespace: str, metadata: MetadataFilter, now: datetime) -> list[int]:
        from engram.stores.redis.store import _entry

        with self._translated("filtering by metadata"):
            tails = list(self._client.smembers(self.keys.ns_vectors(namespace)))
            hashes = self._hashes([self.keys.entry_prefix + t for t in tails])
        allowed = []
        for t, h in zip(tails, hashes):
            if h:
                e = _entry(h)
                if is_live(e, now) and metadata_matches(e.metadata, metadata):
                    allowed.append(self._remember(t))
        return allowed

    def _vl_entries(self, keys: Sequence[int], now: datetime) -> dict[int, Entry]:
        from engram.stores.redis.store import _entry

        known = self._tails()
        chosen = [(k, known[k]) for k in keys if k in known]
        with self._translated("reading entries"):
            hashes = self._hashes([self.keys.entry_prefix + t for _, t in chosen])
        found = {}
        for (k, _), h in zip(chosen, hashes):
            if h:
                e = _entry(h)
                if is_live(e, now):
                    found[k] = e
        return found

    def _vl_count(self, namespace: str | None) -> int:
        with self._translated("counting vectors"):
            if namespace is not None:
                return int(self._client.scard(self.keys.ns_vectors(namespace)))
            names = list(self._client.smembers(self.keys.namespaces))
            if not names:
                return 0
            pipe = self._client.pipeline(transaction=False)
            for ns in names:
                pipe.scard(self.keys.ns_vectors(ns))
            return sum(pipe.execute())

