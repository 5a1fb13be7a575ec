-- One account's counts on some routes and its disabled state, read atomically and changing
-- nothing: the admin API's view of the windows hit.lua keeps. The counting mirrors hit.lua
-- (and MemoryStore.account); test/redis/admin.test.ts compares the two stores.
--
-- KEYS: 1 disabled (enforce)   2 disabled (shadow)
--       then per route: requests zset (request times), distinct zset (record -> last touch)
-- ARGV: 1 now (ms; 0 = the Redis server clock)   2 number of routes R
--       then per route: request capacity, distinct capacity, number of limits L,
--                       then L × (kind 0=requests 1=distinct, window ms)
-- Returns: { now, enforce until (-1 none, -2 forever), shadow until (same),
--            then per route: present 0/1, then a count per limit }

local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function disabledUntil(key)
  local v = redis.call('GET', key)
  if not v then return -1 end
  if v == 'forever' then return -2 end
  v = tonumber(v)
  if v and v > now then return v end
  return -1
end

local out = { now, disabledUntil(KEYS[1]), disabledUntil(KEYS[2]) }
local R = tonumber(ARGV[2])
local a = 3
for r = 1, R do
  local requests, distinct = KEYS[1 + r * 2], KEYS[2 + r * 2]
  local reqCap, distCap, L = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local present = redis.call('EXISTS', requests, distinct) > 0
  -- The same clock hit.lua would use for this route: never behind its newest entry.
  local at = now
  local newest = redis.call('ZRANGE', requests, -1, -1, 'WITHSCORES')
  if newest[2] and tonumber(newest[2]) > at then at = tonumber(newest[2]) end
  local top = redis.call('ZRANGE', distinct, -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) > at then at = tonumber(top[2]) end
  out[#out + 1] = present and 1 or 0
  for _ = 1, L do
    local kind, window = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    local n = 0
    if present then
      local cutoff = at - window
      if kind == 0 then
        n = math.min(redis.call('ZCOUNT', requests, '(' .. cutoff, '+inf'), reqCap)
      else
        n = math.min(redis.call('ZCOUNT', distinct, '(' .. cutoff, '+inf'), distCap)
      end
    end
    out[#out + 1] = n
  end
end
return out
