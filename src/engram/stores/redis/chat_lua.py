"""Lua scripts of the ``redis://`` backend's conversation records (pure: no I/O).

The keys they touch are drawn in :mod:`engram.stores.redis.layout`. Like the
entry scripts, they derive per-record keys from the prefix (``ARGV[1]`` where
noted), so the backend needs a standalone Redis or one Cluster hash slot.

Errors come back as ``ENGRAM_NOT_FOUND ...`` / ``ENGRAM_CONFLICT ...`` replies,
which the store translates into ``NotFound`` / ``Conflict``.
"""

from __future__ import annotations

# Message deletions are logged for the client-side search caches of other
# processes: the removal counter moves once per deleting script, and the seq of
# every message it removed goes into a sorted set scored by that counter value,
# so a cache catches up by reading just the log entries above its own counter.
# The log keeps the newest REMOVAL_LOG entries (whole script runs); the
# counter value of the last run trimmed away is the floor: a cache older than
# it re-reads the id list instead.
REMOVAL_LOG = 100_000

# log_removals(seqs, counter, log, floor): call at the end of a deleting script (whose ARGV[1]
# is the prefix); it drops the messages' vectors and logs that, like drop_vector for entries.
_LOG_REMOVALS = f"""
local function log_removals(seqs, counter, log, floor)
  if #seqs == 0 then return end
  -- The vectors of the removed messages go too (ARGV[1] is the prefix; see _redis_message_vectors).
  local mv = ARGV[1] .. ':msgvec'
  for i = 1, #seqs do
    if redis.call('HDEL', mv, seqs[i]) == 1 then
      redis.call('ZADD', mv .. ':log', redis.call('INCR', mv .. ':seq'), seqs[i])
    end
  end
  local version = redis.call('INCR', counter)
  for i = 1, #seqs, 1000 do
    local args = {{}}
    for j = i, math.min(i + 999, #seqs) do
      args[#args + 1] = version
      args[#args + 1] = seqs[j]
    end
    redis.call('ZADD', log, unpack(args))
  end
  local n = redis.call('ZCARD', log)
  if n > {REMOVAL_LOG} then
    local edge = redis.call('ZRANGE', log, n - {REMOVAL_LOG} - 1, n - {REMOVAL_LOG} - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYSCORE', log, '-inf', edge[2])
    redis.call('SET', floor, edge[2])
  end
end
"""

# KEYS: msgs, msgs:seq, msgs:created
# ARGV: prefix, mode, n, then per message: id, session_id, wanted seq, created_at (µs),
#       number of field pairs, field, value, ...
# mode "append": every id must be new; each message takes the next seq.
# mode "put" (copy, import): a message whose id is stored is left alone; a new one keeps
#       its wanted seq when that is above every seq handed out, else takes the next one,
#       so messages given in seq order keep their order (and, into an empty store, their seq).
# Every new message's session must exist; otherwise nothing is stored.
# Returns per message its seq, negated when the message was stored already.
WRITE_MESSAGES = """
local prefix, mode, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local items, seen, missing, missing_set = {}, {}, {}, {}
local i = 4
for k = 1, n do
  local pairs_n = tonumber(ARGV[i + 4])
  items[k] = {ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], i + 5, pairs_n}
  i = i + 5 + 2 * pairs_n
end
for k = 1, n do
  local it = items[k]
  local stored = redis.call('EXISTS', prefix .. ':msg:' .. it[1]) == 1
  if mode == 'append' and (stored or seen[it[1]]) then
    return redis.error_reply('ENGRAM_CONFLICT a message id is already taken: ' .. it[1])
  end
  seen[it[1]] = true
  if not stored and not missing_set[it[2]] and redis.call('EXISTS', prefix .. ':session:' .. it[2]) == 0 then
    missing_set[it[2]] = true
    missing[#missing + 1] = it[2]
  end
end
if #missing > 0 then
  table.sort(missing)
  return redis.error_reply('ENGRAM_NOT_FOUND session ' .. table.concat(missing, ', ') .. ' does not exist')
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local out = {}
for k = 1, n do
  local it = items[k]
  local key = prefix .. ':msg:' .. it[1]
  local old = redis.call('HGET', key, 'seq')
  if old then
    out[k] = -tonumber(old)
  else
    local seq = last + 1
    if mode == 'put' and it[3] > last then seq = it[3] end
    last = seq
    local fields = {'id', it[1], 'session_id', it[2], 'seq', string.format('%d', seq)}
    for j = 0, 2 * it[6] - 1 do fields[#fields + 1] = ARGV[it[5] + j] end
    redis.call('HSET', key, unpack(fields))
    redis.call('ZADD', KEYS[1], seq, it[1])
    redis.call('ZADD', prefix .. ':msgs:session:' .. it[2], seq, it[1])
    redis.call('ZADD', KEYS[3], it[4], it[1])
    out[k] = seq
  end
end
redis.call('SET', KEYS[2], string.format('%d', last))
return out
"""

# KEYS: session's messages, msgs, msgs:created, msgs:removed, summary, summaries,
#       msgs:removals, msgs:removals:floor
# ARGV: prefix, session_id.  Returns how many messages went (the summary goes too).
DELETE_HISTORY = _LOG_REMOVALS + """
local pairs_ = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local seqs = {}
for i = 1, #pairs_, 2 do
  local id = pairs_[i]
  redis.call('DEL', ARGV[1] .. ':msg:' .. id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  seqs[#seqs + 1] = pairs_[i + 1]
end
redis.call('DEL', KEYS[1], KEYS[5])
redis.call('SREM', KEYS[6], ARGV[2])
log_removals(seqs, KEYS[4], KEYS[7], KEYS[8])
return #seqs
"""

# KEYS: msgs, msgs:created, msgs:removed, msgs:removals, msgs:removals:floor.  ARGV: prefix, message ids...
# Returns how many of them were stored (and are gone now).
DELETE_MESSAGES = _LOG_REMOVALS + """
local seqs = {}
for i = 2, #ARGV do
  local key = ARGV[1] .. ':msg:' .. ARGV[i]
  local m = redis.call('HMGET', key, 'session_id', 'seq')
  if m[1] then
    redis.call('DEL', key)
    redis.call('ZREM', ARGV[1] .. ':msgs:session:' .. m[1], ARGV[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    seqs[#seqs + 1] = m[2]
  end
end
log_removals(seqs, KEYS[3], KEYS[4], KEYS[5])
return #seqs
"""

# ARGV: message key prefix ("P:msg:"), message ids...
# Returns content, session_id, user_id of each (false where gone): what the search
# index needs, in one reply (half the time of a pipeline of HMGET).
SEARCH_FIELDS = """
local out = {}
for i = 2, #ARGV do
  local v = redis.call('HMGET', ARGV[1] .. ARGV[i], 'content', 'session_id', 'user_id')
  out[#out + 1] = v[1] or false
  out[#out + 1] = v[2] or false
  out[#out + 1] = v[3] or false
end
return out
"""

# KEYS: session, summary, summaries.  ARGV: session_id, content, message_count, last_seq, updated_at
PUT_SUMMARY = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('ENGRAM_NOT_FOUND session ' .. ARGV[1] .. ' does not exist')
end
redis.call('HSET', KEYS[2], 'session_id', ARGV[1], 'content', ARGV[2], 'message_count', ARGV[3],
  'last_seq', ARGV[4], 'updated_at', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""


def put_in_session(kind: str) -> str:
    """The script that stores a new record of ``kind`` (a checkpoint, a run) in an existing session.

    KEYS: session, record, index of all, the session's index.
    ARGV: id, session_id, created_at (µs, the index score), field, value, ...
    """
    return f"""
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('ENGRAM_NOT_FOUND session ' .. ARGV[2] .. ' does not exist')
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('ENGRAM_CONFLICT {kind} ' .. ARGV[1] .. ' already exists')
end
local fields = {{}}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return 1
"""


PUT_CHECKPOINT = put_in_session("checkpoint")

# The end of a script that changed the hash KEYS[1]: returns {'ok', field, value, ...}.
RETURN_OK_HASH = """
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out
"""

# KEYS: checkpoint.  ARGV: now (ISO).
# Compare-and-set inside one script, so of racing callers exactly one resumes it.
# Returns {'missing'}, {'resumed', resumed_at} (already resumed), or {'ok', field, value, ...}.
RESUME_CHECKPOINT = """
local h = redis.call('HMGET', KEYS[1], 'status', 'resumed_at')
if not h[1] then return {'missing'} end
if h[1] ~= 'paused' then return {'resumed', h[2] or ''} end
redis.call('HSET', KEYS[1], 'status', 'resumed', 'resumed_at', ARGV[1])""" + RETURN_OK_HASH

# KEYS: checkpoints.  ARGV: prefix, checkpoint ids...  Returns how many were stored.
DELETE_CHECKPOINTS = """
local n = 0
for i = 2, #ARGV do
  local key = ARGV[1] .. ':checkpoint:' .. ARGV[i]
  local session = redis.call('HGET', key, 'session_id')
  if session then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', ARGV[1] .. ':checkpoints:session:' .. session, ARGV[i])
    n = n + 1
  end
end
return n
"""

# KEYS: sessions, msgs, msgs:created, msgs:removed, summaries, checkpoints, tasks,
#       msgs:removals, msgs:removals:floor
# ARGV: prefix, session ids...
# Deletes each session with everything it holds: messages, summary, checkpoints, tasks.
# Returns {sessions, messages, checkpoints, tasks} that went.
DELETE_SESSIONS = _LOG_REMOVALS + """
local p = ARGV[1]
local sessions, checkpoints, tasks = 0, 0, 0
local seqs = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local s = redis.call('HMGET', p .. ':session:' .. id, 'status', 'order')
  if s[1] then
    redis.call('ZREM', KEYS[1], s[2])
    redis.call('ZREM', p .. ':sessions:status:' .. s[1], s[2])
    redis.call('DEL', p .. ':session:' .. id)
    sessions = sessions + 1
  end
  local key = p .. ':msgs:session:' .. id
  local held = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for j = 1, #held, 2 do
    redis.call('DEL', p .. ':msg:' .. held[j])
    redis.call('ZREM', KEYS[2], held[j])
    redis.call('ZREM', KEYS[3], held[j])
    seqs[#seqs + 1] = held[j + 1]
  end
  redis.call('DEL', key, p .. ':summary:' .. id)
  redis.call('SREM', KEYS[5], id)
  key = p .. ':checkpoints:session:' .. id
  for _, c in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    redis.call('DEL', p .. ':checkpoint:' .. c)
    redis.call('ZREM', KEYS[6], c)
    checkpoints = checkpoints + 1
  end
  redis.call('DEL', key)
  key = p .. ':tasks:session:' .. id
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local task = p .. ':task:' .. string.sub(member, string.find(member, '|', 1, true) + 1)
    local status = redis.call('HGET', task, 'status')
    if status then redis.call('ZREM', p .. ':tasks:status:' .. status, member) end
    redis.call('ZREM', KEYS[7], member)
    redis.call('DEL', task)
    tasks = tasks + 1
  end
  redis.call('DEL', key)
end
log_removals(seqs, KEYS[4], KEYS[8], KEYS[9])
return {sessions, #seqs, checkpoints, tasks}
"""
