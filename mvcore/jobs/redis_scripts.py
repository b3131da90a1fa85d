"""The Lua scripts behind every job transition in Redis (one script = one atomic step).

Keys every script gets, in this order (``RedisJobStore.keys``)::

    KEYS[1] {prefix}:job:{id}        the record (hash)
    KEYS[2] {prefix}:job:{id}:alive  the heartbeat (string with a TTL)
    KEYS[3] {prefix}:queued          sorted set: ids of queued jobs (queue cap, reaper)
    KEYS[4] {prefix}:running         sorted set: ids of running jobs (reaper)
    KEYS[5] {prefix}:stream          the taskiq stream (requeue = XADD of the stored payload)

``VERDICT`` is the one place that decides what happens to a running job whose
worker is gone or stopping: requeued with backoff when its kind is safe to redo
(``redo``: ``safe``, or ``until_external`` with no ``external_ref`` yet) and
attempts are left, ``cancelled`` when a cancel was pending, else ``failed`` with
``WORKER_LOST`` and the reason.  It mirrors ``records.not_redone_because``.
"""

from __future__ import annotations

# Verdict ARGV (shared tail of every script that may call it), from V on:
#   now, why, channel, job id, backoff base, backoff cap, error template, cancelled error,
#   reason texts: external, unsafe, attempts
VERDICT = """
local function verdict(V, rekick)
  local now, why, channel, job_id = tonumber(ARGV[V]), ARGV[V + 1], ARGV[V + 2], ARGV[V + 3]
  local base, cap = tonumber(ARGV[V + 4]), tonumber(ARGV[V + 5])
  local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts')) or 1
  local max = tonumber(redis.call('HGET', KEYS[1], 'max_attempts')) or 1
  local redo = redis.call('HGET', KEYS[1], 'redo') or 'never'
  local ref = redis.call('HGET', KEYS[1], 'external_ref') or ''
  local payload = redis.call('HGET', KEYS[1], 'payload')
  local worker = redis.call('HGET', KEYS[1], 'worker') or ''
  redis.call('ZREM', KEYS[4], job_id)
  redis.call('DEL', KEYS[2])
  if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
    redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', tostring(now), 'error', ARGV[V + 7],
               'error_status', '409', 'message', 'cancelled')
    redis.call('PUBLISH', channel, job_id)
    return 'cancelled'
  end
  local reason = nil
  if redo == 'until_external' and ref ~= '' then reason = ARGV[V + 8]
  elseif redo ~= 'safe' and redo ~= 'until_external' then reason = ARGV[V + 9]
  elseif attempts >= max then reason = ARGV[V + 10]
  elseif not payload then reason = 'the job cannot be sent again (no stored message)' end
  if not reason then
    local delay = math.min(cap, base * 2 ^ math.max(0, attempts - 1))
    redis.call('HSET', KEYS[1], 'status', 'queued', 'worker', '', 'retry_at', tostring(now + delay),
               'queued_at', tostring(now), 'lost_worker', worker,
               'message', 'requeued: ' .. why .. ' (attempt ' .. attempts .. ' of ' .. max .. ')')
    redis.call('ZADD', KEYS[3], now, job_id)
    if rekick then
      local id = redis.call('XADD', KEYS[5], '*', 'data', payload)
      redis.call('HSET', KEYS[1], 'msg_id', id)
    end
    return 'requeued'
  end
  local function lit(s) return (string.gsub(s, '%%', '%%%%')) end
  reason = string.gsub(string.gsub(reason, '__REF__', lit(ref)), '__ATTEMPTS__', tostring(attempts))
  reason = string.gsub(reason, '__MAX__', tostring(max))
  local err = string.gsub(ARGV[V + 6], '__WORKER__', lit(worker))
  err = string.gsub(err, '__REASON__', lit(reason))
  err = string.gsub(err, '"__N__"', tostring(attempts))
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', tostring(now), 'error', err,
             'error_status', '503', 'message', 'worker lost: ' .. why)
  redis.call('PUBLISH', channel, job_id)
  return 'failed'
end
"""

# KEYS[6] = {prefix}:jobs (the listing index).  ARGV: cap, ttl, job id, now, then field/value pairs.
# {'full', n} when the queue is at its cap.
CREATE = """
local queued = redis.call('ZCARD', KEYS[3])
if queued >= tonumber(ARGV[1]) then return {'full', queued} end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
local created = tonumber(redis.call('HGET', KEYS[1], 'created_at')) or 0
redis.call('ZADD', KEYS[3], created, ARGV[3])
redis.call('ZADD', KEYS[6], created, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[2]))
return {'ok', queued + 1}
"""

# ARGV: worker, redo, then the verdict tail (V = 3).
CLAIM = (
    VERDICT
    + """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'gone'} end
if st == 'running' and redis.call('EXISTS', KEYS[2]) == 0 then
  st = verdict(3, false)
  if st == 'requeued' then st = 'queued' end
end
if st ~= 'queued' then return {st} end
local now = tonumber(ARGV[3])
local retry_at = tonumber(redis.call('HGET', KEYS[1], 'retry_at')) or 0
if retry_at > now then return {'wait', tostring(retry_at - now)} end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'heartbeat_timeout')) or 30
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3], 'heartbeat_at', ARGV[3],
           'worker', ARGV[1], 'redo', ARGV[2], 'message', 'started', 'external_ref', '')
redis.call('SET', KEYS[2], ARGV[1], 'PX', math.floor(ttl * 1000))
redis.call('ZREM', KEYS[3], ARGV[6])
redis.call('ZADD', KEYS[4], now, ARGV[6])
return {'running', tostring(attempts), tostring(ttl), redis.call('HGET', KEYS[1], 'max_attempts') or '1',
        redis.call('HGET', KEYS[1], 'kind') or '', redis.call('HGET', KEYS[1], 'created_at') or '0'}
"""
)

# ARGV: now, worker, progress, message
BEAT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then
  return 'gone'
end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'heartbeat_timeout')) or 30
redis.call('SET', KEYS[2], ARGV[2], 'PX', math.floor(ttl * 1000))
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[1], 'progress', ARGV[3])
  return 'cancel'
end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[1], 'progress', ARGV[3], 'message', ARGV[4])
return 'ok'
"""

# ARGV: worker, ref
NOTE = """
local st, worker = redis.call('HGET', KEYS[1], 'status'), redis.call('HGET', KEYS[1], 'worker')
if st == 'running' and worker == ARGV[1] then
  redis.call('HSET', KEYS[1], 'external_ref', ARGV[2])
  return 1
end
return 0
"""

# ARGV: now, worker ('' = anyone), channel, job id, then field/value pairs to set.
# A queued job may be finished by the worker that ran it (it was requeued meanwhile): first writer wins.
FINISH = """
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' and st ~= 'running' then return st end
if ARGV[2] ~= '' and st == 'running' and redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then
  return 'gone'
end
local fields = {'finished_at', ARGV[1]}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
"""

# ARGV: worker, then the verdict tail (V = 2).  The worker stops running the job (drain).
RELEASE = (
    VERDICT
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'worker') ~= ARGV[1] then
  return 'gone'
end
return verdict(2, true)
"""
)

# ARGV: the verdict tail (V = 1).  Anyone who sees a running job without a heartbeat.
LOST = (
    VERDICT
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('EXISTS', KEYS[2]) == 1 then
  return false
end
return verdict(1, true)
"""
)

# ARGV: now, cancelled error JSON, channel, job id
CANCEL = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if st == 'queued' or (st == 'running' and redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1], 'error', ARGV[2],
             'error_status', '409', 'message', 'cancelled')
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('ZREM', KEYS[4], ARGV[4])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 'cancelled'
end
if st == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'message', 'cancelling')
  return 'running'
end
return st
"""

# ARGV: now, job id.  failed/cancelled -> queued again with a fresh message; returns the old status.
RETRY = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if st ~= 'failed' and st ~= 'cancelled' then return st end
local payload = redis.call('HGET', KEYS[1], 'payload')
if not payload then return 'no-payload' end
redis.call('HDEL', KEYS[1], 'result', 'error', 'error_status', 'finished_at', 'started_at', 'worker')
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', '0', 'retry_at', '0', 'cancel_requested', '0',
           'external_ref', '', 'progress', '0', 'message', 'queued again (retry)', 'queued_at', ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[1]), ARGV[2])
local id = redis.call('XADD', KEYS[5], '*', 'data', payload)
redis.call('HSET', KEYS[1], 'msg_id', id)
return st
"""

# ARGV: now, job id, minimum age.  The reaper's check of one queued job: is its message still there?
RESEND = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then redis.call('ZREM', KEYS[3], ARGV[2]) return 'expired' end
if st ~= 'queued' then redis.call('ZREM', KEYS[3], ARGV[2]) return st end
local since = redis.call('HGET', KEYS[1], 'queued_at') or redis.call('HGET', KEYS[1], 'created_at')
since = tonumber(since) or 0
if tonumber(ARGV[1]) - since < tonumber(ARGV[3]) then return 'young' end
local id = redis.call('HGET', KEYS[1], 'msg_id')
if id and #redis.call('XRANGE', KEYS[5], id, id) > 0 then return 'ok' end
local payload = redis.call('HGET', KEYS[1], 'payload')
if not payload then return 'no-payload' end
id = redis.call('XADD', KEYS[5], '*', 'data', payload)
redis.call('HSET', KEYS[1], 'msg_id', id, 'queued_at', ARGV[1])
return 'resent'
"""

# KEYS: job, stream, queued, {prefix}:jobs.  ARGV: message bytes, cap, ttl, now, job id, field/value pairs.
# The record and its message in one step (one round trip, and never a record without a message).
SUBMIT = """
local queued = redis.call('ZCARD', KEYS[3])
if queued >= tonumber(ARGV[2]) then return {'full', tostring(queued)} end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local created = tonumber(redis.call('HGET', KEYS[1], 'created_at')) or 0
redis.call('ZADD', KEYS[3], created, ARGV[5])
redis.call('ZADD', KEYS[4], created, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[3]))
local id = redis.call('XADD', KEYS[2], '*', 'data', ARGV[1])
redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'msg_id', id)
return {'ok', id}
"""
