"""The Lua scripts behind the Redis event system: each is one atomic step on a queue or a log.

Every script takes the key prefix as ARGV[1] and names its keys from it (queues are found by
id, their realm's keys from the queue), so it assumes one Redis, not a cluster. Keys:
``q:<id>`` (hash: u user, r realm, st settings, cur log cursor, ev progress, v version),
``queues`` (sorted set: id -> expiry deadline), ``rq:<realm>`` (set of the realm's queue ids),
``realms`` (set of realms with queues), ``uq:<user>`` (set of the user's queue ids),
``log:<realm>`` (stream: ``c`` a change, ``d`` the id
of a deleted queue, which wakes polls parked on it).
"""

PRELUDE = """
local P = ARGV[1]
local function stream_ids(log)
  local last, deleted = '0-0', '0-0'
  if redis.call('EXISTS', log) == 1 then
    local info = redis.call('XINFO', 'STREAM', log)
    for n = 1, #info, 2 do
      if info[n] == 'last-generated-id' then last = info[n + 1]
      elseif info[n] == 'max-deleted-entry-id' then deleted = info[n + 1] end
    end
  end
  return last, deleted
end
local function before(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local function drop(qid, realm)
  local user = redis.call('HGET', P .. 'q:' .. qid, 'u')
  if user then redis.call('SREM', P .. 'uq:' .. user, qid) end
  redis.call('DEL', P .. 'q:' .. qid)
  redis.call('SREM', P .. 'rq:' .. realm, qid)
  redis.call('ZREM', P .. 'queues', qid)
end
"""

# ARGV: prefix, queue id, user, realm, settings, progress, expiry deadline, the most queues a
# user may hold, log length. At the cap, the user's idlest queue (the earliest deadline) is
# dropped first, and polls parked on it are woken to find it gone.
# Returns the cursor: the log's last id, so the queue hears of every change from now on.
REGISTER = (
    PRELUDE
    + """
local held = P .. 'uq:' .. ARGV[3]
local cap = tonumber(ARGV[8])
while cap > 0 and redis.call('SCARD', held) >= cap do
  local idlest, earliest = nil, nil
  for _, qid in ipairs(redis.call('SMEMBERS', held)) do
    local deadline = redis.call('ZSCORE', P .. 'queues', qid)
    if not deadline then
      redis.call('SREM', held, qid)
    elseif not earliest or tonumber(deadline) < earliest then
      idlest, earliest = qid, tonumber(deadline)
    end
  end
  if idlest then
    local realm = redis.call('HGET', P .. 'q:' .. idlest, 'r')
    if realm then
      drop(idlest, realm)
      redis.call('XADD', P .. 'log:' .. realm, 'MAXLEN', '~', ARGV[9], '*', 'd', idlest)
    else
      redis.call('SREM', held, idlest)
      redis.call('ZREM', P .. 'queues', idlest)
    end
  end
end
redis.call('SADD', held, ARGV[2])
local last = stream_ids(P .. 'log:' .. ARGV[4])
redis.call('HSET', P .. 'q:' .. ARGV[2], 'u', ARGV[3], 'r', ARGV[4], 'st', ARGV[5],
  'cur', last, 'ev', ARGV[6], 'v', 0)
redis.call('SADD', P .. 'rq:' .. ARGV[4], ARGV[2])
redis.call('SADD', P .. 'realms', ARGV[4])
redis.call('ZADD', P .. 'queues', ARGV[7], ARGV[2])
return last
"""
)

# ARGV: prefix, queue id, user, now, count. Returns {0} (no such queue: unknown, someone
# else's, or expired, which drops it), {-1} (the log was trimmed past its cursor: dropped) or
# {1, realm, settings, cursor, progress, version, entries after the cursor}.
READ = (
    PRELUDE
    + """
local q = P .. 'q:' .. ARGV[2]
local h = redis.call('HMGET', q, 'u', 'r', 'st', 'cur', 'ev', 'v')
if not h[1] or h[1] ~= ARGV[3] then return {0} end
local deadline = redis.call('ZSCORE', P .. 'queues', ARGV[2])
if not deadline or tonumber(deadline) <= tonumber(ARGV[4]) then
  drop(ARGV[2], h[2])
  return {0}
end
local log = P .. 'log:' .. h[2]
local _, deleted = stream_ids(log)
if before(h[4], deleted) then
  drop(ARGV[2], h[2])
  return {-1}
end
local entries = redis.call('XRANGE', log, '(' .. h[4], '+', 'COUNT', ARGV[5])
return {1, h[2], h[3], h[4], h[5], h[6], entries}
"""
)

# ARGV: prefix, queue id, expected version, cursor, progress. Compare and set: 1 written,
# 0 another process wrote first (read again), -1 the queue is gone.
WRITE = """
local q = ARGV[1] .. 'q:' .. ARGV[2]
local v = redis.call('HGET', q, 'v')
if not v then return -1 end
if v ~= ARGV[3] then return 0 end
redis.call('HSET', q, 'cur', ARGV[4], 'ev', ARGV[5], 'v', tonumber(v) + 1)
return 1
"""

# ARGV: prefix, queue id, expiry deadline. Moves the deadline of a queue that still exists.
TOUCH = """
if redis.call('EXISTS', ARGV[1] .. 'q:' .. ARGV[2]) == 0 then return 0 end
redis.call('ZADD', ARGV[1] .. 'queues', ARGV[3], ARGV[2])
return 1
"""

# ARGV: prefix, queue id, user, now, log length. 1 deleted, 0 no such queue.
DELETE = (
    PRELUDE
    + """
local h = redis.call('HMGET', P .. 'q:' .. ARGV[2], 'u', 'r')
if not h[1] or h[1] ~= ARGV[3] then return 0 end
local deadline = redis.call('ZSCORE', P .. 'queues', ARGV[2])
drop(ARGV[2], h[2])
if not deadline or tonumber(deadline) <= tonumber(ARGV[4]) then return 0 end
redis.call('XADD', P .. 'log:' .. h[2], 'MAXLEN', '~', ARGV[5], '*', 'd', ARGV[2])
return 1
"""
)

# ARGV: prefix, realm, change, log length. One append per change, only if a queue can read it.
PUBLISH = """
if redis.call('SCARD', ARGV[1] .. 'rq:' .. ARGV[2]) == 0 then return 0 end
redis.call('XADD', ARGV[1] .. 'log:' .. ARGV[2], 'MAXLEN', '~', ARGV[4], '*', 'c', ARGV[3])
return 1
"""

# ARGV: prefix, realm, log length. Ends every queue of the realm (a change could not be
# appended to its log), waking the polls parked on each to find it gone. Returns how many.
END_REALM = (
    PRELUDE
    + """
local ended = 0
for _, qid in ipairs(redis.call('SMEMBERS', P .. 'rq:' .. ARGV[2])) do
  drop(qid, ARGV[2])
  redis.call('XADD', P .. 'log:' .. ARGV[2], 'MAXLEN', '~', ARGV[3], '*', 'd', qid)
  ended = ended + 1
end
return ended
"""
)

# ARGV: prefix, now, batch size. Drops up to a batch of queues past their deadline.
EXPIRE = (
    PRELUDE
    + """
local ids = redis.call('ZRANGEBYSCORE', P .. 'queues', '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, qid in ipairs(ids) do
  local realm = redis.call('HGET', P .. 'q:' .. qid, 'r')
  if realm then drop(qid, realm) else redis.call('ZREM', P .. 'queues', qid) end
end
return #ids
"""
)

# ARGV: prefix, realm. Forgets log entries every queue of the realm has read; a realm left
# without queues loses its log.
TRIM = (
    PRELUDE
    + """
local rq = P .. 'rq:' .. ARGV[2]
local log = P .. 'log:' .. ARGV[2]
local oldest = nil
for _, qid in ipairs(redis.call('SMEMBERS', rq)) do
  local cur = redis.call('HGET', P .. 'q:' .. qid, 'cur')
  if not cur then redis.call('SREM', rq, qid)
  elseif not oldest or before(cur, oldest) then oldest = cur end
end
if not oldest then
  redis.call('DEL', log)
  redis.call('SREM', P .. 'realms', ARGV[2])
  return 0
end
return redis.call('XTRIM', log, 'MINID', oldest)
"""
)
