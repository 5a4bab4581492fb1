"""Redis key layout and Lua scripts of the ``redis://`` backend (pure: no I/O).

Every key starts with a prefix (URL option ``prefix``, default ``engram``);
``P`` below. ``{n}:{ns}:{key}`` ("tail") names an entry without ambiguity:
``n`` is the length of the namespace in characters.

=====================================  =========  =============================================
key                                    type       holds
=====================================  =========  =============================================
``P:entry:{n}:{ns}:{key}``             hash       one entry: id, namespace, key, content,
                                                  metadata (JSON), created_at, updated_at,
                                                  expires_at (ISO-8601 UTC, "" = never), order
                                                  (its order member), context ("" or absent =
                                                  none). Redis expires it
                                                  ``expiry_grace`` seconds after expires_at.
``P:ns:{ns}:order``                    zset       order members of the namespace (score 0)
``P:ns:{ns}:expiry``                   zset       order members of the entries that expire,
                                                  scored by expires_at (µs since the epoch)
``P:ns:{ns}:version``                  string     counter, moved by every change to the
                                                  namespace (client-side search caches by it)
``P:order``                            zset       order members of every namespace (score 0)
``P:namespaces``                       set        namespaces that hold entries
``P:seq``                              string     counter: first-insert sequence of entries
``P:session:{id}``                     hash       id, status, metadata, started_at, ended_at, order,
                                                  user_id, agent_id ("" = none)
``P:sessions``                         zset       session order members (score 0)
``P:sessions:status:{status}``         zset       the same, per status
``P:task:{id}``                        hash       id, agent_type, input, output (JSON), status,
                                                  session_id ("" = none), created_at,
                                                  updated_at, completed_at, order
``P:tasks``                            zset       task order members (score 0)
``P:tasks:status:{status}``            zset       the same, per status
``P:tasks:session:{session_id}``       zset       the same, per session
``P:msg:{id}``                         hash       one message: id, session_id, role, content,
                                                  metadata (JSON), created_at, seq; and only
                                                  when set: user_id, agent_id, tool_call_id,
                                                  tool_calls (JSON), attachments (JSON)
``P:msgs``                             zset       message ids of every session, scored by seq
``P:msgs:session:{session_id}``        zset       message ids of one session, scored by seq
``P:msgs:created``                     zset       message ids scored by created_at (µs; prune)
``P:msgs:seq``                         string     counter: the last message seq handed out
``P:msgs:removed``                     string     counter, moved once by every script that
                                                  deletes messages
``P:msgs:removals``                    zset       seq of deleted messages, scored by the
                                                  removal counter of their deletion: the newest
                                                  100,000 (client-side search catches up by it)
``P:msgs:removals:floor``              string     the removal counter of the last deletion
                                                  trimmed from that log
``P:summary:{session_id}``             hash       session_id, content, message_count,
                                                  last_seq, updated_at
``P:summaries``                        set        session ids that have a summary
``P:profile:{user_id}``                hash       user_id, traits (JSON), updated_at
``P:profiles``                         set        user ids that have a profile
``P:checkpoint:{id}``                  hash       id, session_id, state (JSON), status,
                                                  created_at; and only when set: run_id,
                                                  resumed_at
``P:checkpoints``                      zset       checkpoint ids scored by created_at (µs)
``P:checkpoints:session:{session_id}`` zset       the same, per session
``P:vec:{n}:{ns}:{key}``               hash       the entry's embedding: vector (base64 of
                                                  little-endian float32), hash (hex blake2b-128
                                                  of the text embedded: context, then content);
                                                  expires with the entry, deleted with it or
                                                  when an upsert changes its content or context
``P:ns:{ns}:vectors``                  set        tails of the namespace's entries that have
                                                  a vector
``P:vec:model``                        hash       name, dimensions of the embedding model
``P:vec:seq``                          string     counter, moved by every change of a vector
``P:vec:log``                          zset       tails whose vector changed, scored by the
                                                  counter at their last change (the newest
                                                  100,000; each process's vector index
                                                  catches up by it)
``P:vec:log:floor``                    string     the highest counter trimmed from that log
``P:msgvec``                           hash       message seq -> the message's embedding (base64
                                                  of little-endian float32); deleted with the
                                                  message (history deletion, prune, session)
``P:msgvec:seq``                       string     counter, moved by every change of a message
                                                  vector
``P:msgvec:log``                       zset       message seqs whose vector changed, scored by
                                                  the counter at their last change (the newest
                                                  100,000; each process's message vector index
                                                  catches up by it)
``P:msgvec:log:floor``                 string     the highest counter trimmed from that log
=====================================  =========  =============================================

Order members sort lexicographically (all scores are 0, so rank order is
lexicographic order):

* entry: ``{updated_at ISO, 32 chars}|{first-insert seq, 16 digits}|{tail}`` —
  the last member is the newest; equal ``updated_at`` falls back to insertion
  order, like SQLite's rowid.
* session/task: ``{10**16 - 1 - started/created µs, 16 digits}|{id}`` — the first
  member is the newest; ties by id.

Every change to an entry, session or task is one Lua script, so the record
and its index entries change together (atomic across processes). Scripts
touch keys they derive from the prefix, so the backend needs a standalone
Redis (or one Redis Cluster hash slot), not a sharded Cluster.

Conversation records (messages, summaries, checkpoints) are written by the
scripts of :mod:`engram.stores.redis.chat_lua`, which refuse records of a
session that does not exist; ``seq`` comes from ``P:msgs:seq`` inside the
script, so it only grows and orders a session's messages stably.

An entry counts as expired while its order member sits in the namespace's
expiry set with a score at or before now, whether Redis has already dropped
its hash or not; ``prune()`` removes such members (and their hashes), so the
counts stay exact like the unpruned rows of the SQL backends.
"""

from __future__ import annotations

from datetime import datetime, timezone

from engram._time import to_iso

ISO_CHARS = 32
SEQ_DIGITS = 16
TAIL_START = ISO_CHARS + 1 + SEQ_DIGITS + 1  # 0-based index of the tail in an entry order member
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INVERT = 10**16 - 1


def micros(dt: datetime) -> int:
    """Microseconds since the epoch (exact in a double until the year 2255)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.order = f"{prefix}:order"
        self.namespaces = f"{prefix}:namespaces"
        self.seq = f"{prefix}:seq"
        self.entry_prefix = f"{prefix}:entry:"
        self.sessions = f"{prefix}:sessions"
        self.tasks = f"{prefix}:tasks"
        self.messages = f"{prefix}:msgs"
        self.messages_created = f"{prefix}:msgs:created"
        self.messages_seq = f"{prefix}:msgs:seq"
        self.messages_removed = f"{prefix}:msgs:removed"
        self.messages_removals = f"{prefix}:msgs:removals"
        self.messages_removals_floor = f"{prefix}:msgs:removals:floor"
        self.summaries = f"{prefix}:summaries"
        self.profiles = f"{prefix}:profiles"
        self.checkpoints = f"{prefix}:checkpoints"
        self.vector_model = f"{prefix}:vec:model"
        self.vector_seq = f"{prefix}:vec:seq"
        self.vector_log = f"{prefix}:vec:log"
        self.vector_log_floor = f"{prefix}:vec:log:floor"
        self._ns_keys: dict[str, tuple[str, ...]] = {}

    @staticmethod
    def tail(namespace: str, key: str) -> str:
        return f"{len(namespace)}:{namespace}:{key}"

    def entry(self, namespace: str, key: str) -> str:
        return self.entry_prefix + self.tail(namespace, key)

    def entry_of_member(self, member: str) -> str:
        return self.entry_prefix + member[TAIL_START:]

    def ns_order(self, namespace: str) -> str:
        return f"{self.prefix}:ns:{namespace}:order"

    def ns_expiry(self, namespace: str) -> str:
        return f"{self.prefix}:ns:{namespace}:expiry"

    def ns_version(self, namespace: str) -> str:
        return f"{self.prefix}:ns:{namespace}:version"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def sessions_by_status(self, status: str) -> str:
        return f"{self.prefix}:sessions:status:{status}"

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    def tasks_by_status(self, status: str) -> str:
        return f"{self.prefix}:tasks:status:{status}"

    def tasks_by_session(self, session_id: str) -> str:
        return f"{self.prefix}:tasks:session:{session_id}"

    # -- conversation records --------------------------------------------------------------
    def message(self, message_id: str) -> str:
        return f"{self.prefix}:msg:{message_id}"

    def session_messages(self, session_id: str) -> str:
        return f"{self.prefix}:msgs:session:{session_id}"

    def summary(self, session_id: str) -> str:
        return f"{self.prefix}:summary:{session_id}"

    def profile(self, user_id: str) -> str:
        return f"{self.prefix}:profile:{user_id}"

    def checkpoint(self, checkpoint_id: str) -> str:
        return f"{self.prefix}:checkpoint:{checkpoint_id}"

    def session_checkpoints(self, session_id: str) -> str:
        return f"{self.prefix}:checkpoints:session:{session_id}"

    # -- embeddings ------------------------------------------------------------------------
    def vector(self, tail: str) -> str:
        return f"{self.prefix}:vec:{tail}"

    def ns_vectors(self, namespace: str) -> str:
        return f"{self.prefix}:ns:{namespace}:vectors"

    def entry_keys(self, namespace: str, key: str) -> list[str]:
        """KEYS of PUT_ENTRY and DELETE_ENTRY, in their order."""
        ns_keys = self._ns_keys.get(namespace)
        if ns_keys is None:  # built once per namespace: every write names the same six
            ns_keys = self._ns_keys[namespace] = (
                self.ns_order(namespace),
                self.ns_expiry(namespace),
                self.order,
                self.namespaces,
                self.seq,
                self.ns_version(namespace),
            )
            if len(self._ns_keys) > 4096:
                self._ns_keys.clear()
        return [self.entry_prefix + f"{len(namespace)}:{namespace}:{key}", *ns_keys]

    def namespace_keys(self, namespace: str) -> list[str]:
        """KEYS of DELETE_NAMESPACE and PRUNE_NAMESPACE, in their order."""
        return [self.ns_order(namespace), self.ns_expiry(namespace), self.order, self.namespaces, self.ns_version(namespace)]


def namespace_of_tail(tail: str) -> str:
    """``7:default:k`` -> ``default``."""
    length, _, rest = tail.partition(":")
    return rest[: int(length)]


def key_of_member(member: str) -> str:
    tail = member[TAIL_START:]
    length, _, rest = tail.partition(":")
    return rest[int(length) + 1 :]


def entry_member(updated_at: datetime) -> str:
    """The start of an entry's order member (the script adds seq and tail)."""
    return to_iso(updated_at)  # type: ignore[return-value]


def newest_first_member(at: datetime, ident: str) -> str:
    return f"{_INVERT - micros(at):0{SEQ_DIGITS}d}|{ident}"


# Lua: drop the vector of an entry (P = "prefix:") and log the change when there was one
# (see engram.stores.redis.vectors); prepended to the scripts that remove or rewrite entries.
DROP_VECTOR = """
local function drop_vector(P, ns, tail)
  local gone = redis.call('DEL', P .. 'vec:' .. tail) + redis.call('SREM', P .. 'ns:' .. ns .. ':vectors', tail)
  if gone > 0 then
    redis.call('ZADD', P .. 'vec:log', redis.call('INCR', P .. 'vec:seq'), tail)
  end
end
"""

# KEYS: entry, ns order, ns expiry, order, namespaces, seq, ns version
# ARGV: id, namespace, key, content, metadata, created_at ("" = updated_at), updated_at,
#       expiry ("" = never, else "{{expires_at ISO}}|{{µs}}|{{pexpireat ms}}"), now (ISO; "" = updated_at),
#       context ("" = none)
# (The prefix P and the entry's tail come from KEYS: a shorter call, the one every store() makes.)
# An existing live entry keeps id and created_at; its first-insert sequence is kept either way.
# Metadata "" (not given) keeps a live entry's metadata ("{{}}" when new or expired).
# A new entry, or new content or context, drops the entry's vector; a kept vector expires with the entry.
# Returns {{id, created_at, metadata}} as stored, or 0 when that is what was given (the
# usual new entry: a shorter reply for the client to read).
PUT_ENTRY = DROP_VECTOR + f"""
local P = string.sub(KEYS[4], 1, -6)
local tail = string.sub(KEYS[1], #P + 7)
local updated = ARGV[7]
local id, created, metadata = ARGV[1], ARGV[6], ARGV[5]
if created == '' then created = updated end
local now = ARGV[9]
if now == '' then now = updated end
local expires, expires_us, pexpireat = '', '', ''
if ARGV[8] ~= '' then
  expires, expires_us, pexpireat = string.match(ARGV[8], '^(.-)|(.-)|(.-)$')
end
local old = redis.call('HMGET', KEYS[1], 'id', 'created_at', 'expires_at', 'order', 'content', 'metadata', 'context')
if metadata == '' then metadata = '{{}}' end
local seq
if old[5] ~= ARGV[4] or (old[7] or '') ~= ARGV[10] then
  drop_vector(P, ARGV[2], tail)
elseif expires_us ~= '' then
  redis.call('PEXPIREAT', P .. 'vec:' .. tail, pexpireat)
elseif old[3] ~= '' then
  redis.call('PERSIST', P .. 'vec:' .. tail)
end
if old[4] then
  if old[3] == '' or old[3] > now then
    id = old[1]
    created = old[2]
    if ARGV[5] == '' then metadata = old[6] end
  end
  redis.call('ZREM', KEYS[2], old[4])
  redis.call('ZREM', KEYS[4], old[4])
  if old[3] ~= '' then redis.call('ZREM', KEYS[3], old[4]) end
  seq = string.sub(old[4], {ISO_CHARS + 2}, {ISO_CHARS + 1 + SEQ_DIGITS})
else
  seq = string.format('%0{SEQ_DIGITS}d', redis.call('INCR', KEYS[6]))
  redis.call('SADD', KEYS[5], ARGV[2])
end
local member = updated .. '|' .. seq .. '|' .. tail
redis.call('HSET', KEYS[1], 'id', id, 'namespace', ARGV[2], 'key', ARGV[3], 'content', ARGV[4],
  'metadata', metadata, 'created_at', created, 'updated_at', updated, 'expires_at', expires, 'order', member,
  'context', ARGV[10])
redis.call('ZADD', KEYS[2], 0, member)
redis.call('ZADD', KEYS[4], 0, member)
redis.call('INCR', KEYS[7])
if expires_us ~= '' then
  redis.call('ZADD', KEYS[3], expires_us, member)
  redis.call('PEXPIREAT', KEYS[1], pexpireat)
elseif old[3] and old[3] ~= '' then
  redis.call('PERSIST', KEYS[1])
end
if id == ARGV[1] and ARGV[5] ~= '' then return 0 end
return {{id, created, metadata}}
"""

# KEYS: as PUT_ENTRY (seq unused).  ARGV: namespace, now (ISO), P ("prefix:"), tail.
# Returns 1 when the entry was live.
DELETE_ENTRY = DROP_VECTOR + """
local old = redis.call('HMGET', KEYS[1], 'expires_at', 'order')
if ARGV[3] then drop_vector(ARGV[3], ARGV[1], ARGV[4]) end
if not old[2] then return 0 end
local live = 0
if old[1] == '' or old[1] > ARGV[2] then live = 1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], old[2])
redis.call('ZREM', KEYS[3], old[2])
redis.call('ZREM', KEYS[4], old[2])
redis.call('INCR', KEYS[7])
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[5], ARGV[1]) end
return live
"""

# KEYS: ns order, ns expiry, order, namespaces, ns version.  ARGV: namespace, now (µs), entry key prefix.
# Returns how many live entries went. The version moves on (never resets: caches key on it).
# Vectors go too (P, "prefix:", is the entry key prefix less its "entry:").
DELETE_NAMESPACE = DROP_VECTOR + f"""
local P = string.sub(ARGV[3], 1, -7)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local expired = redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[2])
for _, member in ipairs(members) do
  redis.call('DEL', ARGV[3] .. string.sub(member, {TAIL_START + 1}))
  drop_vector(P, ARGV[1], string.sub(member, {TAIL_START + 1}))
  redis.call('ZREM', KEYS[3], member)
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('INCR', KEYS[5])
return #members - expired
"""

# KEYS: as DELETE_NAMESPACE.  ARGV: namespace, now (µs), entry key prefix.  Returns how many went.
# A hash is deleted only if it still belongs to the expired member (the key may hold a newer entry).
PRUNE_NAMESPACE = DROP_VECTOR + f"""
local P = string.sub(ARGV[3], 1, -7)
local members = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
for _, member in ipairs(members) do
  local entry = ARGV[3] .. string.sub(member, {TAIL_START + 1})
  local holder = redis.call('HGET', entry, 'order')
  if holder == member then redis.call('DEL', entry) end
  if holder == member or not holder then drop_vector(P, ARGV[1], string.sub(member, {TAIL_START + 1})) end
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
end
if #members > 0 then redis.call('INCR', KEYS[5]) end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return #members
"""

# KEYS: session, sessions.  ARGV: prefix, id, status, metadata, started_at, ended_at ("" = none), member,
#       user_id, agent_id ("" = none)
PUT_SESSION = """
local old = redis.call('HMGET', KEYS[1], 'status', 'order')
if old[1] then
  redis.call('ZREM', ARGV[1] .. ':sessions:status:' .. old[1], old[2])
  redis.call('ZREM', KEYS[2], old[2])
end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'status', ARGV[3], 'metadata', ARGV[4],
  'started_at', ARGV[5], 'ended_at', ARGV[6], 'order', ARGV[7], 'user_id', ARGV[8], 'agent_id', ARGV[9])
redis.call('ZADD', KEYS[2], 0, ARGV[7])
redis.call('ZADD', ARGV[1] .. ':sessions:status:' .. ARGV[3], 0, ARGV[7])
return 1
"""

# KEYS: task, tasks, session of the task (or the task key again when it has none).
# ARGV: prefix, id, agent_type, input, output, status, session_id ("" = none),
#       created_at, updated_at, completed_at ("" = none), member
PUT_TASK = """
if ARGV[7] ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then
  return redis.error_reply('ENGRAM_CONFLICT session ' .. ARGV[7] .. ' does not exist')
end
local old = redis.call('HMGET', KEYS[1], 'status', 'session_id', 'order')
if old[1] then
  redis.call('ZREM', ARGV[1] .. ':tasks:status:' .. old[1], old[3])
  if old[2] ~= '' then redis.call('ZREM', ARGV[1] .. ':tasks:session:' .. old[2], old[3]) end
  redis.call('ZREM', KEYS[2], old[3])
end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'agent_type', ARGV[3], 'input', ARGV[4], 'output', ARGV[5],
  'status', ARGV[6], 'session_id', ARGV[7], 'created_at', ARGV[8], 'updated_at', ARGV[9],
  'completed_at', ARGV[10], 'order', ARGV[11])
redis.call('ZADD', KEYS[2], 0, ARGV[11])
redis.call('ZADD', ARGV[1] .. ':tasks:status:' .. ARGV[6], 0, ARGV[11])
if ARGV[7] ~= '' then redis.call('ZADD', ARGV[1] .. ':tasks:session:' .. ARGV[7], 0, ARGV[11]) end
return 1
"""
