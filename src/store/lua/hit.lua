-- One observation, atomically: the same steps as src/engine/evaluate.ts and
-- MemoryStore.hit, in one round trip. Keep the two in step: test/redis/parity.test.ts runs
-- both on the same random traces.
--
-- KEYS: 1 requests zset (member: the time, ":seq" within a ms -> time)   2 distinct zset (record -> last touch)
--       3 disabled (enforce)             4 disabled (shadow)
-- ARGV: 1 now (ms; 0 = use the Redis server clock, shared by every instance)
--       2 shadow (0/1)   3 disable-for ms (-1 = forever)
--       4 count the request (0: the response step of an exchange: records only)
--       5 passed challenge limits, as ",i,j," (indices), or ""
--       6 the route's policy as one JSON array (built once per policy by the caller, decoded
--         by Redis' C cjson; one argument instead of 5 + 4 per limit saves per-argument work):
--         request capacity, distinct capacity, longest distinct window ms, longest request
--         window ms, number of limits L, then L × (kind 0=requests 1=distinct, window ms, max,
--         severity)
--       then the record ids
-- Returns: { now, worst limit index (-1), blocked 0/1, disabled-until (-1 none, -2 forever),
--            disabled-now-until (-1 none, -2 forever), count per limit ... }

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
local reqCap, distCap, longestDist, longestReq, L = spec[1], spec[2], spec[3], spec[4], spec[5]
local FIRST = 7

local limits = {}
local hasReq, hasDist = false, false
for i = 0, L - 1 do
  local base = 6 + i * 4
  local l = { index = i, kind = spec[base], window = spec[base + 1], max = spec[base + 2], severity = spec[base + 3] }
  -- A solved challenge passes its limit (severity 2); more severe limits still act.
  l.passed = l.severity == 2 and passes ~= '' and string.find(passes, ',' .. i .. ',', 1, true) ~= nil
  limits[#limits + 1] = l
  if l.kind == 0 then hasReq = true else hasDist = true end
end
local records = {}
do
  local seen = {}
  for i = FIRST, #ARGV do
    local r = ARGV[i]
    if not seen[r] then seen[r] = true; records[#records + 1] = r end
  end
end

-- The window clock never runs backwards for an account's route.
local newestReq = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newestReq[2] and tonumber(newestReq[2]) > now then now = tonumber(newestReq[2]) end
if hasDist then
  local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) > now then now = tonumber(top[2]) end
end

local function disabledUntil(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  if v == 'forever' then return -2 end
  v = tonumber(v)
  if v and v > now then return v end
  return nil
end

local disabled = disabledUntil(KEYS[3])
if not disabled and shadow then disabled = disabledUntil(KEYS[4]) end
if disabled then records = {} end

local counts = {}
for i = 1, L do counts[i] = 0 end
local worst = nil
local function moreSevere(l)
  return worst == nil or l.severity > worst.severity or (l.severity == worst.severity and l.index < worst.index)
end

-- Requests are a sorted set of their times, so every window is one ZCOUNT (O(log n)) rather
-- than reading the whole log into Lua: a busy account's log is as cheap as an idle one's.
-- A member is its time, with ":0001", ":0002"… for more requests in the same millisecond
-- (fixed width, so the newest sorts last among equal scores). The log keeps the newest reqCap
-- entries (what the largest request limit needs); an idle key expires with its longest window.
if hasReq then
  if countRequest then
    local member = string.format('%d', now)
    if newestReq[2] and tonumber(newestReq[2]) == now then
      member = member .. string.format(':%04d', tonumber(string.match(newestReq[1], ':(%d+)$') or '0') + 1)
    end
    redis.call('ZADD', KEYS[1], now, member)
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -reqCap - 1) -- all but the newest reqCap
    redis.call('PEXPIRE', KEYS[1], longestReq + 1000)
  end
  for _, l in ipairs(limits) do
    if l.kind == 0 then
      local n = redis.call('ZCOUNT', KEYS[1], '(' .. (now - l.window), '+inf')
      counts[l.index + 1] = n
      if countRequest and n > l.max and not l.passed and moreSevere(l) then worst = l end
    end
  end
end

if hasDist then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - longestDist)
  local scores = {}
  for i, r in ipairs(records) do scores[i] = redis.call('ZSCORE', KEYS[2], r) end
  for _, l in ipairs(limits) do
    if l.kind == 1 then
      local cutoff = now - l.window
      local inWindow = redis.call('ZCOUNT', KEYS[2], '(' .. cutoff, '+inf')
      local fresh = 0
      for i = 1, #records do
        local s = scores[i]
        if not s or tonumber(s) <= cutoff then fresh = fresh + 1 end
      end
      local count = inWindow + fresh
      counts[l.index + 1] = math.min(count, distCap)
      if fresh > 0 and count > l.max and not l.passed and moreSevere(l) then worst = l end
    end
  end
end

local blocked = disabled ~= nil or (worst ~= nil and worst.severity > 0)

if hasDist and not blocked and #records > 0 then
  -- One ZADD for many ids (a page of 50 is one command, not 50), in chunks Lua's stack holds.
  if #records == 1 then redis.call('ZADD', KEYS[2], now, records[1]) end
  for first = 1, #records > 1 and #records or 0, 1000 do
    local args = {}
    for i = first, math.min(first + 999, #records) do
      args[#args + 1] = now
      args[#args + 1] = records[i]
    end
    redis.call('ZADD', KEYS[2], unpack(args))
  end
  -- Evict the least recently touched past the cap (see windows.ts for why this is exact).
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -distCap - 1)
  redis.call('PEXPIRE', KEYS[2], longestDist + 1000)
end

local disabledNow = -1
if not disabled and worst ~= nil and worst.severity == 3 then
  local key = shadow and KEYS[4] or KEYS[3]
  if disableFor < 0 then
    redis.call('SET', key, 'forever')
    disabledNow = -2
  else
    disabledNow = now + disableFor
    redis.call('SET', key, disabledNow, 'PX', disableFor)
  end
end

local out = { now, worst and worst.index or -1, blocked and 1 or 0, disabled or -1, disabledNow }
for i = 1, L do out[#out + 1] = counts[i] end
return out
