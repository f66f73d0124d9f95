"""Every Lua script Régua runs, in one place.

A script is atomic: the multi-key changes that must never be half-done (upsert, dispatch,
claim, finish, status, lifecycle, pacing, the SMS ledger) are one script each. Every key
one call of a script touches carries the same hash tag (one campaign, one trunk, the
phone counters, the SMS ledger), so each call runs in one slot on Redis Cluster too.
"""

# ---------------------------------------------------------------- ingest and scheduling

UPSERT = """
-- KEYS: schedule, then one account hash per row
-- ARGV: per row (account id, packed account, phone field, packed phone, schedule ms)
-- returns per row: 0 unchanged, 1 new account, 2 updated, 3 new phone on an account
local out = {}
for i = 2, #KEYS do
  local o = 5 * (i - 2)
  local key, id, acc, pf, ph, score = KEYS[i], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local a = redis.call('HGET', key, 'a')
  local p = redis.call('HGET', key, pf)
  if a == acc and p == ph then
    out[i - 1] = 0
  else
    redis.call('HSET', key, 'a', acc, pf, ph)
    if not a then
      redis.call('ZADD', KEYS[1], 'NX', score, id)
      out[i - 1] = 1
    else
      -- a plan made on the old data must not be carried out: a worker's claim goes stale
      redis.call('HINCRBY', key, 'hv', 1)
      redis.call('ZADD', KEYS[1], 'LT', score, id)
      if not p then out[i - 1] = 3 else out[i - 1] = 2 end
    end
  end
end
return out
"""

DISPATCH = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return {-1, false} end
local room = tonumber(ARGV[3]) - redis.call('XLEN', KEYS[3])
local limit = math.min(tonumber(ARGV[2]), room)
local moved = 0
if limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit)
  for _, m in ipairs(due) do
    redis.call('XADD', KEYS[3], '*', 'a', m)
  end
  if #due > 0 then redis.call('ZREM', KEYS[2], unpack(due)) end
  moved = #due
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {moved, nxt[2] or false}
"""

SET_STATUS = """
-- KEYS: account hash, events list, schedule; ARGV: packed account read, the new one,
-- events JSON, schedule score ('' : leave the schedule alone). 0: changed meanwhile, read again
if redis.call('HGET', KEYS[1], 'a') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'a', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'hv', 1)
redis.call('RPUSH', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], 'LT', ARGV[4], ARGV[5]) end
return 1
"""

# Batch scripts: every key of one call belongs to one campaign (one hash tag, one cluster
# slot), so a whole batch of a worker is one command and one reply.

LOAD = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"""

COUNT = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1])
end
return out
"""

CLAIM = """
-- KEYS: account hashes; ARGV: now_ms, lock_ms, then (attempt, expected hv, packed) per key
local now, lock_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local attempt, want, packed = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local existing = redis.call('HGET', key, 'h:' .. attempt)
  local result = nil
  if existing then
    result = {'exists', existing}
  else
    local lk = redis.call('HGET', key, 'lk')
    if lk then
      local holder, exp = string.match(lk, '^(.*)|(%d+)$')
      if holder ~= attempt and tonumber(exp) > now then result = {'locked', lk} end
    end
    if not result then
      local hv = redis.call('HGET', key, 'hv') or '0'
      if hv ~= want then
        result = {'stale', hv}
      else
        redis.call('HSET', key, 'h:' .. attempt, packed, 'lk', attempt .. '|' .. (now + lock_ms),
                   'hv', tonumber(hv) + 1)
        result = {'new', ''}
      end
    end
  end
  out[i] = result
end
return out
"""

FINISH = r"""
-- KEYS: schedule, work, stats, series, then (account hash, events list) per entry
-- ARGV: group, hour bucket, then (attempt, packed, entry, account, score, fb, stats, events) per entry
-- Returns the positions (1-based) of the entries refused because their keys hold another
-- type: a refused entry writes nothing (a script's writes are not undone on an error, so
-- every entry is checked before its first write), the others are written.
local group, bucket = ARGV[1], ARGV[2]
local n = (#KEYS - 4) / 2
local refused = {}
for i = 1, n do
  local acct, events = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local o = 2 + 8 * (i - 1)
  local attempt, packed, entry, account = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local score, fb, stats, evs = ARGV[o + 5], ARGV[o + 6], ARGV[o + 7], ARGV[o + 8]
  local ta, te = redis.call('TYPE', acct)['ok'], redis.call('TYPE', events)['ok']
  if (ta ~= 'hash' and ta ~= 'none') or (te ~= 'list' and te ~= 'none') then
    refused[#refused + 1] = i
  else
  if attempt ~= '' then
    if packed == '' then
      redis.call('HDEL', acct, 'h:' .. attempt)  -- the contact was never made
    else
      redis.call('HSET', acct, 'h:' .. attempt, packed)
    end
    redis.call('HINCRBY', acct, 'hv', 1)
    local lk = redis.call('HGET', acct, 'lk')
    if lk and string.sub(lk, 1, #attempt + 1) == attempt .. '|' then
      redis.call('HDEL', acct, 'lk')
    end
  end
  if fb == '-' then
    redis.call('HDEL', acct, 'fb')
  elseif fb ~= '' then
    redis.call('HSET', acct, 'fb', fb)
  end
  if score ~= '' then
    redis.call('ZADD', KEYS[1], score, account)
  else
    redis.call('ZREM', KEYS[1], account)
  end
  if entry ~= '' then
    redis.call('XACK', KEYS[2], group, entry)
    redis.call('XDEL', KEYS[2], entry)
  end
  for k, v in string.gmatch(stats, '([^\31]+)\31(-?%d+)\31') do
    redis.call('HINCRBY', KEYS[3], k, v)
    if string.sub(k, 1, 8) == 'outcome:' then redis.call('HINCRBY', KEYS[4], bucket .. '|' .. k, v) end
  end
  if evs ~= '' then redis.call('RPUSH', events, evs) end
  end
end
return refused
"""

TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', false} end
local ok = false
for i = 3, #ARGV do if ARGV[i] == state then ok = true end end
if not ok then return {'refused', state} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'state_at', ARGV[2])
return {'ok', state}
"""

# ---------------------------------------------------------------- suppression

UNSUPPRESS = """
-- KEYS: suppression hash, audit stream; ARGV: field, at, actor, kind, data if it was
-- there, data if it was not. Lifts the entry and audits what happened, together.
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
local data = ARGV[6]
if removed == 1 then data = ARGV[5] end
redis.call('XADD', KEYS[2], '*', 'at', ARGV[2], 'actor', ARGV[3], 'kind', ARGV[4], 'data', data)
return removed
"""

# ---------------------------------------------------------------- signing in

COUNT_FAILURE = """
-- KEYS: a failure counter; ARGV: the window in seconds. The window starts at the first
-- failure (Redis 6.2 has no EXPIRE NX).
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# ---------------------------------------------------------------- pacing (telephony)

PACE_ACQUIRE = """
-- Pacing: a slot is a lease (member scored by when it lapses); the rate a sliding window:
-- at most k calls in any window of k * 1000 / rate ms (k = the whole calls per second, at
-- least 1), so no second ever sees more than the carrier's CPS, and waiting callers lose
-- nothing (a token bucket of one token let one through per retry round).
-- KEYS[1] leases zset, KEYS[2] window zset (may be absent: no rate limit)
-- ARGV: now_ms, lease_until_ms, member, max, rate per second (0: none)
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return {1, 0} end
local active = redis.call('ZCARD', KEYS[1])
if active >= tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now}
end
local rate = tonumber(ARGV[5])
if rate > 0 then
  local k = math.max(1, math.floor(rate))
  local window = math.ceil(k * 1000 / rate)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= k then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + window - now)}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], window + 1000)
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
return {1, 0}
"""

# ---------------------------------------------------------------- SMS

OUTBOX_SEND = """
-- ARGV: now, then (key, to, text, campaign, level) per message; one call for a whole batch
local out = {}
local n = (#ARGV - 1) / 5
for i = 0, n - 1 do
  local key, to, text, campaign, level = ARGV[2 + 5 * i], ARGV[3 + 5 * i], ARGV[4 + 5 * i], ARGV[5 + 5 * i], ARGV[6 + 5 * i]
  local existing = redis.call('HGET', KEYS[1], key)
  if existing then
    out[i + 1] = {existing, 1}
  else
    local id = redis.call('XADD', KEYS[2], '*', 'to', to, 'text', text, 'campaign', campaign,
                          'level', level, 'at', ARGV[1], 'key', key, 'sandbox', '1')
    redis.call('HSET', KEYS[1], key, id)
    out[i + 1] = {id, 0}
  end
end
return out
"""

# The SMS ledger (idempotency): one field per idempotency key.
SMS_CLAIM = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then return v end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false
"""

SMS_RECORD = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v == false or v == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end
return 0
"""

SMS_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""

# A provider's rate shared by every process: a token bucket whose balance may go negative
# (the queue ahead); returns the wait in ms.
RATE_RESERVE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
else
  now = ts  -- another host's clock ran ahead: never refill backwards
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 60000)
if tokens >= 0 then return 0 end
return math.ceil(-tokens * 1000 / rate)
"""


# ---------------------------------------------------------------- payments

PAYMENT_RECORD = """
-- KEYS: events hash, the charge's hash, payments stream, unsettled zset
-- ARGV: event id, event JSON, kind (paid|refund), cents, now ms, stream entry JSON
-- the event waits in unsettled (by id) until its account is settled: a crash retries it
-- returns {state, paid, refunded}: state 1 new, 0 seen before, 2 no such charge
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  local paid = redis.call('HGET', KEYS[2], 'paid') or '0'
  local refunded = redis.call('HGET', KEYS[2], 'refunded') or '0'
  return {0, paid, refunded}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '1000000', '*', 'e', ARGV[6], 'unknown', '1')
  return {2, '0', '0'}
end
local field = 'paid'
if ARGV[3] == 'refund' then field = 'refunded' end
redis.call('HINCRBY', KEYS[2], field, ARGV[4])
redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '1000000', '*', 'e', ARGV[6])
return {1, redis.call('HGET', KEYS[2], 'paid') or '0', redis.call('HGET', KEYS[2], 'refunded') or '0'}
"""

PAYMENT_APPLY = """
-- KEYS: the campaign's counted-payments set, stats hash, the account's timeline
-- ARGV: event id, cents (negative for a refund), count (1 a payment, 0 a refund),
--       step, channel, timeline JSON, attributed (1: this campaign's money)
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[7] == '1' then
  redis.call('HINCRBY', KEYS[2], 'recovered_cents', ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'payments', ARGV[3])
  if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[2], 'recovered_cents:step:' .. ARGV[4], ARGV[2]) end
  if ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[2], 'recovered_cents:channel:' .. ARGV[5], ARGV[2]) end
end
redis.call('RPUSH', KEYS[3], ARGV[6])
return 1
"""

CHARGE_CLAIM = """
-- KEYS: charge queue; ARGV: now ms, lease ms, how many
-- takes up to N charges due now and pushes them a lease away (a killed maker's come back)
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, txid in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[1] + ARGV[2], txid)
end
return due
"""

# ---------------------------------------------------------------- agreements

AGREEMENT_CREATE = """
-- KEYS: current-agreement hash, the agreement hash, review zset, stats hash, the account's
-- agreements zset. ARGV: account, agreement id, doc JSON, review ms, campaign, total cents,
-- now ms. {1, id}: made; {0, id}: the account has a current agreement already (this one
-- when the same offer was accepted twice); {2, id}: this agreement was made and has ended.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then return {0, current} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, ARGV[2]} end
redis.call('HSET', KEYS[2], 'doc', ARGV[3], 'status', 'current')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[5] .. '|made', 1)
redis.call('HINCRBY', KEYS[4], ARGV[5] .. '|made_cents', ARGV[6])
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[2])
return {1, ARGV[2]}
"""

AGREEMENT_END = """
-- KEYS: the agreement hash, current-agreement hash, review zset, stats hash.
-- ARGV: new status (kept | broken), ended at (ISO), account, agreement id, campaign.
-- 1: ended now; 0: it was not current (ended before, or never made).
if redis.call('HGET', KEYS[1], 'status') ~= 'current' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'ended_at', ARGV[2])
if redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[4] then redis.call('HDEL', KEYS[2], ARGV[3]) end
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('HINCRBY', KEYS[4], ARGV[5] .. '|' .. ARGV[1], 1)
return 1
"""

AGREEMENT_REOPEN = """
-- KEYS: the agreement hash, current-agreement hash, review zset, stats hash.
-- ARGV: account, agreement id, campaign, review ms. A kept agreement whose payment was
-- refunded is current again (unless the account has another one). 1: reopened.
if redis.call('HGET', KEYS[1], 'status') ~= 'kept' then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'current')
redis.call('HDEL', KEYS[1], 'ended_at')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[3] .. '|kept', -1)
return 1
"""
