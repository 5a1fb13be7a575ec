-- Observations, each atomically: the same steps as src/engine/evaluate.ts and
-- MemoryStore.hit, in one round trip. Keep the two in step: test/redis/parity.test.ts runs
-- both on the same random traces.
--
-- One call takes a batch of observations (those of one event-loop turn of a proxy: see
-- redis.ts), made one after another exactly as if each were a call of its own: the call's
-- fixed costs (the command, the script's start, TIME, decoding a policy's spec) are paid once
-- per batch instead of once per observation. On Redis Cluster a batch is one observation (a
-- call's keys must be in one slot).
--
-- KEYS: every observation's keys, one after another.
-- ARGV: 1 the number of observations B; then per observation: its number of keys, its number
--       of arguments, then those arguments. Below, KEYS[i] and ARGV[i] are the observation's own.
-- Returns: B replies, each the observation's (below), or an error when that observation's keys
--          are of the wrong type (the others stand). Any other error fails the whole call.
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
-- ARGV: 1 now (ms; 0 = use the Redis server clock, shared by every instance; read once a batch)
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

-- The observation being made: set by observe(), read by the helpers below.
local now, serverClock, passes, worstSev, worstIdx
local serverNow, specs = nil, {}
local NEVER = -math.huge

local function disabledUntil(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  if v == 'forever' then return -2 end
  v = tonumber(v)
  if v and v > now then return v end
  return nil
end

-- A crossed limit acts when it is the most severe so far (ties: the lower index) and no solved
-- challenge passes it (severity 2; more severe limits still act).
local function acts(sev, idx)
  if worstSev ~= nil and (sev < worstSev or (sev == worstSev and idx >= worstIdx)) then return false end
  return not (sev == 2 and passes ~= '' and string.find(passes, ',' .. idx .. ',', 1, true))
end

-- Housekeeping of a window key — dropping entries older than its longest window W, and its
-- expiry — runs when the part's clock enters a new slice of W/8 ms (at most a minute), not on
-- every call: the expiry is then set to the end of that slice + W + 1 s, so it never falls
-- before "newest entry + W + 1 s" (every write in the same slice finds it set), and an idle key
-- lives at most one slice longer than before. Between, stale entries stay in the set; no
-- window counts them (each ZCOUNT starts past its own cutoff, and a record last touched
-- before its window is new to it), and the cap trims below drop them first.
local function slice(w)
  local s = math.floor(w / 8)
  if s > 60000 then return 60000 end
  if s < 1 then return 1 end
  return s
end
local function housekeep(key, t, top, w)
  if serverClock then
    local s = slice(w)
    local b = math.floor(t / s)
    if top and math.floor(top / s) == b then return end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', t - w))
    redis.call('PEXPIREAT', key, string.format('%d', (b + 1) * s + w + 1000))
  else
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', t - w))
    redis.call('PEXPIRE', key, string.format('%d', w + 1000))
  end
end

-- One observation: its keys are KEYS[k + 1 ..], its arguments ARGV[a + 1 .. a + n].
local function observe(k, a, n)
  now = math.floor(tonumber(ARGV[a + 1])) -- whole ms, as the memory store counts
  -- With the Redis clock (ARGV 1 = 0) a window key's housekeeping runs once per slice of its
  -- time (see below); with the caller's clock (tests, replay), whose times need not be near
  -- Redis' own, on every write as before.
  serverClock = now == 0
  if serverClock then
    if not serverNow then
      local t = redis.call('TIME')
      serverNow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    now = serverNow
  end
  local shadow = ARGV[a + 2] == '1'
  local disableFor = tonumber(ARGV[a + 3])
  local countRequest = ARGV[a + 4] == '1'
  passes = ARGV[a + 5]
  -- A batch's observations of one route share its spec: decoded once.
  local spec = specs[ARGV[a + 6]]
  if not spec then
    spec = cjson.decode(ARGV[a + 6])
    specs[ARGV[a + 6]] = spec
  end
  local account = ARGV[a + 7]
  local before = ARGV[a + 8]
  local FIRST = 10
  local O, P = spec[1], spec[2]

  local records
  if n == FIRST then
    records = { ARGV[a + FIRST] }
  else
    records = {}
    local seen = {}
    for i = a + FIRST, a + n do
      local r = ARGV[i]
      if not seen[r] then seen[r] = true; records[#records + 1] = r end
    end
  end

  -- A disable of any owner (the account, its network, the route) holds.
  local disabled, disabledBy = nil, 0
  for o = 1, O do
    disabled = disabledUntil(KEYS[k + 2 * o - 1])
    if not disabled and shadow then disabled = disabledUntil(KEYS[k + 2 * o]) end
    if disabled then disabledBy = o; break end
  end
  if before == 'd' then disabled = disabled or -3 end
  local stopped = disabled ~= nil

  worstSev, worstIdx = nil, nil
  local worstOwner = 0
  local freshest = 0
  local earlier = false
  if before ~= '' and before ~= 'd' then
    local sev, idx = string.match(before, '^(%d+),(%d+)$')
    worstSev, worstIdx, earlier = tonumber(sev), tonumber(idx), true
  end

  -- The reply: its head is filled in at the end, each limit's count (out[7 + c + i]) as it is
  -- counted. What the write step needs of each part is kept in st[4p - 3 .. 4p].
  local out = { 0, 0, 0, 0, 0, 0, 0 }
  local st = {}

  -- Requests are a sorted set of their times, so every window is one ZCOUNT (O(log n)) rather
  -- than reading the whole log into Lua: a busy log is as cheap as an idle one. A member is its
  -- time, with ":0001", ":0002"… for more requests in the same millisecond (fixed width, so the
  -- newest sorts last among equal scores). Every window counts at most reqCap (what the largest
  -- request limit needs): when the longest window holds more, the log keeps its newest reqCap.
  local c = 0
  local at = 3
  for p = 1, P do
    local owner, accounts, reqCap, distCap = spec[at], spec[at + 1] == 1, spec[at + 2], spec[at + 3]
    local longestDist, longestReq, L = spec[at + 4], spec[at + 5], spec[at + 6]
    local req, dist = KEYS[k + 2 * O + 2 * p - 1], KEYS[k + 2 * O + 2 * p]
    local hasReq, hasDist = false, false
    for i = 1, L do
      if spec[at + 2 + 5 * i] == 0 then hasReq = true else hasDist = true end
    end
    local rs
    if stopped then rs = {}
    elseif accounts then rs = countRequest and { account } or {}
    else rs = records end
    st[4 * p] = rs
    -- A part's window clock never runs backwards.
    local t = now
    local reqTopScore, reqSeq, distTop
    if hasReq then
      -- The newest request's time is its member's (cheaper to read than its score).
      local m = redis.call('ZRANGE', req, -1, -1)[1]
      if m then
        local colon = string.find(m, ':', 1, true)
        if colon then
          reqTopScore, reqSeq = tonumber(string.sub(m, 1, colon - 1)), tonumber(string.sub(m, colon + 1))
        else
          reqTopScore, reqSeq = tonumber(m), 0
        end
        if reqTopScore > t then t = reqTopScore end
      end
    end
    if hasDist then
      local r = redis.call('ZRANGE', dist, -1, -1, 'WITHSCORES')
      if r[2] then
        distTop = tonumber(r[2])
        if distTop > t then t = distTop end
      end
    end
    -- Numbers go to Redis as strings formatted here: cheaper than redis.call's own conversion.
    local ts = string.format('%d', t)
    st[4 * p - 3], st[4 * p - 2], st[4 * p - 1] = ts, distTop or false, false
    if hasReq then
      if countRequest then
        local member = ts
        if reqTopScore == t then member = string.format('%s:%04d', ts, reqSeq + 1) end
        redis.call('ZADD', req, ts, member)
      end
      local longest = 0
      for i = 1, L do
        local o = at + 2 + 5 * i
        if spec[o] == 0 then
          local n = redis.call('ZCOUNT', req, string.format('(%d', t - spec[o + 1]), '+inf')
          if n > longest then longest = n end
          if n > reqCap then n = reqCap end
          out[7 + c + i] = n
          if countRequest and n > spec[o + 2] and acts(spec[o + 3], spec[o + 4]) then
            worstSev, worstIdx, worstOwner = spec[o + 3], spec[o + 4], owner
          end
        end
      end
      if countRequest then
        if longest > reqCap then redis.call('ZREMRANGEBYRANK', req, 0, -reqCap - 1) end -- all but the newest reqCap
        housekeep(req, t, reqTopScore, longestReq)
      end
    end
    if hasDist then
      -- Each record's last touch (-inf: never), in one command (ZMSCORE: Redis 6.2+) however
      -- many there are; one record (the common case) without a table. Before 6.2 (no ZMSCORE:
      -- an error reply, not a failure, with pcall) one ZSCORE a record, as before.
      local nr, one, scores = #rs, NEVER, nil
      if nr == 1 then
        local v = redis.call('ZSCORE', dist, rs[1])
        one = v and tonumber(v) or NEVER
      elseif nr > 1 then
        scores = {}
        for first = 1, nr, 1000 do
          local last = math.min(first + 999, nr)
          local got = redis.pcall('ZMSCORE', dist, unpack(rs, first, last))
          if got.err then
            for k = first, last do
              local v = redis.call('ZSCORE', dist, rs[k])
              scores[k] = v and tonumber(v) or NEVER
            end
          else
            for k = 1, #got do scores[first + k - 1] = got[k] and tonumber(got[k]) or NEVER end
          end
        end
      end
      local longest = 0
      for i = 1, L do
        local o = at + 2 + 5 * i
        if spec[o] == 1 then
          local window = spec[o + 1]
          local cutoff = t - window
          local inWindow = redis.call('ZCOUNT', dist, string.format('(%d', cutoff), '+inf')
          local fresh = 0
          if nr == 1 then
            if one <= cutoff then fresh = 1 end
          else
            for k = 1, nr do
              if scores[k] <= cutoff then fresh = fresh + 1 end
            end
          end
          local count = inWindow + fresh
          if count > longest then longest = count end
          if owner == 1 and not accounts and window == longestDist then freshest = fresh end
          out[7 + c + i] = math.min(count, distCap)
          if fresh > 0 and count > spec[o + 2] and acts(spec[o + 3], spec[o + 4]) then
            worstSev, worstIdx, worstOwner = spec[o + 3], spec[o + 4], owner
          end
        end
      end
      st[4 * p - 1] = longest
    end
    c = c + L
    at = at + 7 + 5 * L
  end

  local blocked = stopped or (worstSev ~= nil and worstSev > 0)
  if earlier and worstOwner == 0 then worstSev = nil end -- the earlier call's limit: it reported it

  if not blocked then
    at = 3
    for p = 1, P do
      local rs, longest = st[4 * p], st[4 * p - 1]
      if longest and #rs > 0 then
        local dist, ts, distCap = KEYS[k + 2 * O + 2 * p], st[4 * p - 3], spec[at + 3]
        -- One ZADD for many ids (a page of 50 is one command, not 50), in chunks Lua's stack holds.
        if #rs == 1 then redis.call('ZADD', dist, ts, rs[1]) end
        for first = 1, #rs > 1 and #rs or 0, 1000 do
          local args = {}
          for i = first, math.min(first + 999, #rs) do
            args[#args + 1] = ts
            args[#args + 1] = rs[i]
          end
          redis.call('ZADD', dist, unpack(args))
        end
        -- Evict the least recently touched past the cap (see windows.ts for why this is exact):
        -- only needed when the longest window holds more than the cap.
        if longest > distCap then redis.call('ZREMRANGEBYRANK', dist, 0, -distCap - 1) end
        housekeep(dist, tonumber(ts), st[4 * p - 2] or nil, spec[at + 4])
      end
      at = at + 7 + 5 * spec[at + 6]
    end
  end

  -- A crossed disable limit disables the owner whose windows crossed it.
  local disabledNow = -1
  if not stopped and worstSev == 3 then
    local key = shadow and KEYS[k + 2 * worstOwner] or KEYS[k + 2 * worstOwner - 1]
    -- Why, beside it (the same hash tag, so the same slot): since when, which limit.
    local why = string.format('%d|%s#%d', now, ARGV[a + 9], worstIdx)
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
  out[1], out[2], out[3], out[4], out[5], out[6], out[7] = now, worstSev and worstIdx or -1, blocked and 1 or 0,
    disabled or -1, disabledNow, disabled and disabledBy or worstOwner, freshest
  return out
end

local out = {}
local a = 2
local k = 0
for b = 1, tonumber(ARGV[1]) do
  local nk, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local ok, reply = pcall(observe, k, a + 1, n)
  if ok then
    out[b] = reply
  else
    -- (pcall gets the message of a failed redis.call: "WRONGTYPE …", "READONLY …".)
    local message = type(reply) == 'table' and reply.err or tostring(reply)
    -- This observation's keys: its own error.
    if string.sub(message, 1, 9) == 'WRONGTYPE' then
      out[b] = redis.error_reply(message)
    else
      -- The server's state (READONLY on a demoted primary, OOM, …): the whole call fails, as
      -- each call would, with the error's own code (error() would make it "ERR …"), so that
      -- the client sees it (a READONLY makes it reconnect: redis.ts).
      return redis.error_reply(message)
    end
  end
  k = k + nk
  a = a + 2 + n
end
return out
