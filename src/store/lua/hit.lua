-- One observation, atomically: the same steps as src/engine/evaluate.ts and
-- MemoryStore.hit, in one round trip. Keep the two in step: test/redis/parity.test.ts runs
-- both on the same random traces.
--
-- An observation updates one or more *parts*: sets of windows held under an *owner* (the
-- account, its client network `net:<cidr>`, or the route `route:<name>`), counting requests
-- and distinct records, or distinct accounts (the account is the part's one "record"). Every
-- part decides first; the most severe crossed limit of any part acts; only then, unless it
-- blocks, are records counted in every part.
--
-- KEYS: per owner o = 1..O: [2o-1] disabled (enforce), [2o] disabled (shadow);
--       then per part p = 1..P: [2O+2p-1] requests zset (member: the time, ":seq" within a ms),
--       [2O+2p] distinct zset (record -> last touch)
-- ARGV: 1 now (ms; 0 = use the Redis server clock, shared by every instance)
--       2 shadow (0/1)   3 disable-for ms (-1 = forever)
--       4 count the request (0: the response step of an exchange: records only)
--       5 passed challenge limits, as ",i,j," (indices), or ""
--       6 the parts as one JSON array (built once per policy by the caller, decoded by Redis' C
--         cjson: one argument instead of several per limit): O, P, then per part: owner (1..O),
--         counts accounts (0/1), request capacity, distinct capacity, longest distinct window
--         ms, longest request window ms, number of limits L, then L × (kind 0=requests
--         1=distinct, window ms, max, severity, index)
--       7 the account
--       8 what an earlier call of this observation decided, on Redis Cluster where owners live
--         in different slots: "" nothing that blocks, "d" a disable, "severity,index" a
--         crossed limit that blocks (this call then counts no records, and its own limit acts
--         only if more severe)
--       9 the route's name (a disable keeps which limit made it: <disable key>w = "<since>|<route>#<index>")
--       then the record ids
-- Returns: { now, worst limit index (-1), blocked 0/1, disabled-until (-1 none, -2 forever),
--            disabled-now-until (-1 none, -2 forever), owner that decided (0: none),
--            records new to the account's longest distinct window (what a shadow would-be
--            block serves uncounted), then each part's counts, in the order of its limits }

local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local shadow = ARGV[2] == '1'
local disableFor = tonumber(ARGV[3])
local countRequest = ARGV[4] == '1'
local passes = ARGV[5]
local spec = cjson.decode(ARGV[6])
local account = ARGV[7]
local before = ARGV[8]
local FIRST = 10
local O, P = spec[1], spec[2]

local records = {}
do
  local seen = {}
  for i = FIRST, #ARGV do
    local r = ARGV[i]
    if not seen[r] then seen[r] = true; records[#records + 1] = r end
  end
end

local function disabledUntil(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  if v == 'forever' then return -2 end
  v = tonumber(v)
  if v and v > now then return v end
  return nil
end

-- A disable of any owner (the account, its network, the route) holds.
local disabled, disabledBy = nil, 0
for o = 1, O do
  disabled = disabledUntil(KEYS[2 * o - 1])
  if not disabled and shadow then disabled = disabledUntil(KEYS[2 * o]) end
  if disabled then disabledBy = o; break end
end
if before == 'd' then disabled = disabled or -3 end
local stopped = disabled ~= nil

local parts = {}
do
  local at = 3
  for p = 1, P do
    local part = { owner = spec[at], accounts = spec[at + 1] == 1, reqCap = spec[at + 2], distCap = spec[at + 3],
      longestDist = spec[at + 4], longestReq = spec[at + 5], limits = {}, hasReq = false, hasDist = false,
      req = KEYS[2 * O + 2 * p - 1], dist = KEYS[2 * O + 2 * p] }
    local L = spec[at + 6]
    at = at + 7
    for i = 1, L do
      local l = { kind = spec[at], window = spec[at + 1], max = spec[at + 2], severity = spec[at + 3], index = spec[at + 4] }
      at = at + 5
      -- A solved challenge passes its limit (severity 2); more severe limits still act.
      l.passed = l.severity == 2 and passes ~= '' and string.find(passes, ',' .. l.index .. ',', 1, true) ~= nil
      part.limits[i] = l
      if l.kind == 0 then part.hasReq = true else part.hasDist = true end
    end
    if stopped then part.records = {}
    elseif part.accounts then part.records = countRequest and { account } or {}
    else part.records = records end
    parts[p] = part
  end
end

local worst, worstOwner = nil, 0
local freshest = 0
local earlier = nil
if before ~= '' and before ~= 'd' then
  local sev, idx = string.match(before, '^(%d+),(%d+)$')
  earlier = { severity = tonumber(sev), index = tonumber(idx) }
  worst = earlier
end
local function moreSevere(l)
  return worst == nil or l.severity > worst.severity or (l.severity == worst.severity and l.index < worst.index)
end

-- Requests are a sorted set of their times, so every window is one ZCOUNT (O(log n)) rather
-- than reading the whole log into Lua: a busy log is as cheap as an idle one. A member is its
-- time, with ":0001", ":0002"… for more requests in the same millisecond (fixed width, so the
-- newest sorts last among equal scores). The log keeps the newest reqCap entries (what the
-- largest request limit needs); an idle key expires with its longest window.
for _, part in ipairs(parts) do
  -- A part's window clock never runs backwards.
  local t = now
  local newestReq = {}
  if part.hasReq then
    newestReq = redis.call('ZRANGE', part.req, -1, -1, 'WITHSCORES')
    if newestReq[2] and tonumber(newestReq[2]) > t then t = tonumber(newestReq[2]) end
  end
  if part.hasDist then
    local top = redis.call('ZRANGE', part.dist, -1, -1, 'WITHSCORES')
    if top[2] and tonumber(top[2]) > t then t = tonumber(top[2]) end
  end
  part.now = t
  part.counts = {}
  if part.hasReq then
    if countRequest then
      local member = string.format('%d', t)
      if newestReq[2] and tonumber(newestReq[2]) == t then
        member = member .. string.format(':%04d', tonumber(string.match(newestReq[1], ':(%d+)$') or '0') + 1)
      end
      redis.call('ZADD', part.req, t, member)
      redis.call('ZREMRANGEBYRANK', part.req, 0, -part.reqCap - 1) -- all but the newest reqCap
      redis.call('PEXPIRE', part.req, part.longestReq + 1000)
    end
    for i, l in ipairs(part.limits) do
      if l.kind == 0 then
        local n = redis.call('ZCOUNT', part.req, '(' .. (t - l.window), '+inf')
        part.counts[i] = n
        if countRequest and n > l.max and not l.passed and moreSevere(l) then worst = l; worstOwner = part.owner end
      end
    end
  end
  if part.hasDist then
    redis.call('ZREMRANGEBYSCORE', part.dist, '-inf', t - part.longestDist)
    local scores = {}
    for i, r in ipairs(part.records) do scores[i] = redis.call('ZSCORE', part.dist, r) end
    for i, l in ipairs(part.limits) do
      if l.kind == 1 then
        local cutoff = t - l.window
        local inWindow = redis.call('ZCOUNT', part.dist, '(' .. cutoff, '+inf')
        local fresh = 0
        for k = 1, #part.records do
          local s = scores[k]
          if not s or tonumber(s) <= cutoff then fresh = fresh + 1 end
        end
        local count = inWindow + fresh
        if part.owner == 1 and not part.accounts and l.window == part.longestDist then freshest = fresh end
        part.counts[i] = math.min(count, part.distCap)
        if fresh > 0 and count > l.max and not l.passed and moreSevere(l) then worst = l; worstOwner = part.owner end
      end
    end
  end
end

local blocked = stopped or (worst ~= nil and worst.severity > 0)
if worst == earlier then worst = nil end

if not blocked then
  for _, part in ipairs(parts) do
    local rs = part.records
    if part.hasDist and #rs > 0 then
      -- One ZADD for many ids (a page of 50 is one command, not 50), in chunks Lua's stack holds.
      if #rs == 1 then redis.call('ZADD', part.dist, part.now, rs[1]) end
      for first = 1, #rs > 1 and #rs or 0, 1000 do
        local args = {}
        for i = first, math.min(first + 999, #rs) do
          args[#args + 1] = part.now
          args[#args + 1] = rs[i]
        end
        redis.call('ZADD', part.dist, unpack(args))
      end
      -- Evict the least recently touched past the cap (see windows.ts for why this is exact).
      redis.call('ZREMRANGEBYRANK', part.dist, 0, -part.distCap - 1)
      redis.call('PEXPIRE', part.dist, part.longestDist + 1000)
    end
  end
end

-- A crossed disable limit disables the owner whose windows crossed it.
local disabledNow = -1
if not stopped and worst ~= nil and worst.severity == 3 then
  local key = shadow and KEYS[2 * worstOwner] or KEYS[2 * worstOwner - 1]
  -- Why, beside it (the same hash tag, so the same slot): since when, which limit.
  local why = string.format('%d|%s#%d', now, ARGV[9], worst.index)
  if disableFor < 0 then
    redis.call('SET', key, 'forever')
    redis.call('SET', key .. 'w', why)
    disabledNow = -2
  else
    disabledNow = now + disableFor
    redis.call('SET', key, disabledNow, 'PX', disableFor)
    redis.call('SET', key .. 'w', why, 'PX', disableFor)
  end
end

if disabled == -3 then disabled = nil end -- the earlier call's disable: it reported it
local out = { now, worst and worst.index or -1, blocked and 1 or 0, disabled or -1, disabledNow,
  disabled and disabledBy or worstOwner, freshest }
for _, part in ipairs(parts) do
  for i = 1, #part.limits do out[#out + 1] = part.counts[i] or 0 end
end
return out
