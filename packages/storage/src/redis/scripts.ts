// The Lua scripts of the Redis driver. One announce is one EVALSHA
// (docs/decisions.md "Storage"): write, prune, count and sample in one atomic
// step, so concurrent first announces see each other (chihaya#457).
//
// Swarm keys (all share the `{<infohash base64url>}` hash tag so scripts run
// on Cluster): `p4` and `p6`, one sorted set of compact peers (6 or 18 bytes)
// per family, scored by expiry time in seconds since SCORE_EPOCH_MS, plus
// SEEDER_OFFSET for seeders and PARTIAL_SEED_OFFSET for BEP 21 partial seeds,
// so after pruning the ranks hold every downloading leecher first, then every
// seeder, then every partial seed (one key per family: a key costs ~200 bytes,
// more than ten peers); `i` hash compact peer -> peer_id (only when peer ids
// are stored); `r` hash compact peer -> download receipt `<download count>:<now score>`
// of the peer's counted completion (docs/redis.md "Download receipts");
// `b` hash family digit + key hash -> `<score>:<compact peer>`, the entry a
// client's latest announce with that key hash wrote, valid while that member
// still has that score (docs/decisions.md "Peers that move");
// `d` download count (no TTL: durable). Time always comes from
// the caller (ARGV), never from the server, so an injected clock rules expiry.
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * Scores count seconds from 2024-01-01 so they stay within listpack's 32-bit
 * integer encoding (6 bytes per score instead of 10 for milliseconds since
 * 1970) until 2092; docs/decisions.md "Sources".
 */
export const SCORE_EPOCH_MS = Date.UTC(2024, 0, 1);

/** Expiry score of a peer announcing at `nowMs`: rounded up, so a peer lives at most 1 s longer than peer_lifetime, never shorter. */
export function expiryScore(nowMs: number, lifetimeMs: number): number {
  return Math.ceil((nowMs + lifetimeMs - SCORE_EPOCH_MS) / 1000);
}

/**
 * Added to a seeder's score. Seeder scores stay below 2^31 (listpack's 32-bit
 * integer encoding) until 2058.
 */
export const SEEDER_OFFSET = 2 ** 30;

/**
 * Added to a BEP 21 partial seed's score (twice SEEDER_OFFSET). Above 2^31 listpack stores the score in 64
 * bits, a few bytes more for partial seeds only, which are few.
 */
export const PARTIAL_SEED_OFFSET = 2 * SEEDER_OFFSET;

/** Peers with a score <= this (leechers) or in [OFFSET, OFFSET + this] (seeders, partial seeds) are expired at `nowMs`. */
export function nowScore(nowMs: number): number {
  return Math.floor((nowMs - SCORE_EPOCH_MS) / 1000);
}

export interface Script {
  name: string;
  lua: string;
  sha: string;
}

function script(name: string, lua: string): Script {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

// Shared by the scripts: ARGV[1] is always the now score. The band offsets
// are written into the text (constants, not arguments) and every score bound
// handed to redis.call is a string: Redis 7.0 formats a Lua number argument
// with %.17g, about a microsecond each (docs/redis.md "CPU per announce").
// prune() drops expired peers' entries from the peer-id hash (when ids are
// stored) and from the receipt hash (when the caller found it exists).
const PRUNE = `
local OFF, POFF = ${SEEDER_OFFSET}, ${PARTIAL_SEED_OFFSET}
local S_OFF, S_POFF = '${SEEDER_OFFSET}', '${PARTIAL_SEED_OFFSET}'
local X_OFF, X_POFF = '(${SEEDER_OFFSET}', '(${PARTIAL_SEED_OFFSET}'
-- The last expired score of each band at now (a string): leechers, seeders, partial seeds.
local function bounds(s)
  local now = tonumber(s)
  return { s, string.format('%d', OFF + now), string.format('%d', POFF + now) }
end
local function expired(key, b)
  local gone = redis.call('ZRANGE', key, '-inf', b[1], 'BYSCORE')
  local seeders = redis.call('ZRANGE', key, S_OFF, b[2], 'BYSCORE')
  for i = 1, #seeders do gone[#gone + 1] = seeders[i] end
  local partial = redis.call('ZRANGE', key, S_POFF, b[3], 'BYSCORE')
  for i = 1, #partial do gone[#gone + 1] = partial[i] end
  return gone
end
-- rKey: the receipt hash, or false when it does not exist. partial: false
-- when the key holds no partial seed, whose band then needs no range delete.
local function prune(key, b, idKey, rKey, partial)
  if idKey or rKey then
    local gone = expired(key, b)
    for i = 1, #gone, 1000 do
      local j = math.min(i + 999, #gone)
      redis.call('ZREM', key, unpack(gone, i, j))
      if idKey then redis.call('HDEL', idKey, unpack(gone, i, j)) end
      if rKey then redis.call('HDEL', rKey, unpack(gone, i, j)) end
    end
    return #gone
  end
  local removed = redis.call('ZREMRANGEBYSCORE', key, '-inf', b[1])
  if partial then removed = removed + redis.call('ZREMRANGEBYSCORE', key, S_POFF, b[3]) end
  return removed + redis.call('ZREMRANGEBYSCORE', key, S_OFF, b[2])
end
-- A key's TTL only grows: a peer promised a longer lifetime (docs/load.md)
-- must outlive a later, shorter promise to another peer of the swarm. GT
-- (Redis 7.0) leaves a key without a TTL alone, so a new key gets its first.
local function extend(key, ms)
  if redis.call('PEXPIRE', key, ms, 'GT') == 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ms)
  end
end
-- seeders, leechers (partial seeds included), partial seeds
local function live(key, b)
  local l = redis.call('ZCOUNT', key, '(' .. b[1], X_OFF)
  local s = redis.call('ZCOUNT', key, '(' .. b[2], X_POFF)
  local p = redis.call('ZCOUNT', key, '(' .. b[3], '+inf')
  return s, l + p, p
end
`;

/**
 * KEYS: 1 own-family peers, 2 other-family peers, 3 downloads, 4 peer-id hash,
 * 5 receipt hash, 6 key-hash bindings.
 * ARGV: 1 now score, 2 compact peer, 3 the peer's score (expiry score, plus
 * SEEDER_OFFSET for a seeder, PARTIAL_SEED_OFFSET for a partial seed), 4 key TTL ms,
 * 5 flags, one character each: role '1' seeder | 'p' partial seed | '0'
 * leecher, event 's'(stopped) | 'c'(completed) | 'n', want ids '1'|'0',
 * store ids '1'|'0' (announceFlags()); 6 numwant, 7 random integer,
 * 8 peer_id ('' when ids are not stored), 9 binding field (family digit +
 * key hash) or '' without a key.
 * Returns {seeders, leechers (partial seeds included), downloaded,
 * concatenated peers, concatenated ids, counted 1|0 (this announce added a
 * download), receipt or '', partial seeds}.
 *
 * The receipt: a counted completion stores the swarm's new download count and
 * the time (unique per swarm) as the peer's receipt; a `completed` repeated by
 * that peer, still a live seeder, within one peer lifetime of it gets the same
 * receipt back and counts nothing here. A store that keeps downloads
 * elsewhere adds each receipt once there, so a completion whose count was lost in flight (a crash
 * before that write) is counted on the client's retry, and never twice
 * (docs/storage-api.md "Consistency").
 *
 * What each step costs Redis, and why it is written this way:
 * docs/redis.md "CPU per announce".
 */
export const ANNOUNCE = script(
  'announce',
  PRUNE +
    `
local own, other, idKey, rKey = KEYS[1], KEYS[2], KEYS[4], KEYS[5]
local now = tonumber(ARGV[1])
local b = bounds(ARGV[1])
local member = ARGV[2]
local flags = ARGV[5]
local storeIds = string.sub(flags, 4, 4) == '1'
-- Most swarms have one family and no receipt: one EXISTS says so for both.
local hasOther, hasReceipts = false, false
local found = redis.call('EXISTS', other, rKey)
if found == 2 then hasOther, hasReceipts = true, true
elseif found == 1 then
  hasReceipts = redis.call('EXISTS', rKey) == 1
  hasOther = not hasReceipts
end
-- Partial seeds are rare: a key without any needs no range delete of their
-- band and counts none but the announcer.
local partials = redis.call('ZCOUNT', own, S_POFF, '+inf') > 0
prune(own, b, storeIds and idKey, hasReceipts and rKey, partials)

local event = string.sub(flags, 2, 2)
-- Whether the peer already is a live seeder matters to a completion only.
local wasSeeder = false
if event == 'c' then
  local old = redis.call('ZSCORE', own, member)
  wasSeeder = old and tonumber(old) >= OFF and tonumber(old) < POFF
end

-- A client that moved: the entry its latest announce with this key hash
-- wrote, if nobody announced to it since, is replaced by this one
-- (docs/decisions.md "Peers that move"). Pruned already, so it is live.
local bKey, bind = KEYS[6], ARGV[9]
if bind ~= '' then
  local held = redis.call('HGET', bKey, bind)
  if held then
    local sep = string.find(held, ':', 1, true)
    local prev = string.sub(held, sep + 1)
    if prev ~= member then
      local ps = redis.call('ZSCORE', own, prev)
      if ps and tonumber(ps) == tonumber(string.sub(held, 1, sep - 1)) then
        ps = tonumber(ps)
        if ps >= OFF and ps < POFF then wasSeeder = true end
        redis.call('ZREM', own, prev)
        if storeIds then redis.call('HDEL', idKey, prev) end
        -- The receipt follows the client and keeps naming the member it was
        -- counted at, so a store counting receipts elsewhere counts it once.
        local receipt = redis.call('HGET', rKey, prev)
        if receipt then
          redis.call('HDEL', rKey, prev)
          if event ~= 's' then
            if not string.find(receipt, '^%d+:%d+:') then
              receipt = receipt .. ':' .. (string.gsub(prev, '.', function(c)
                return string.format('%02x', string.byte(c))
              end))
            end
            redis.call('HSET', rKey, member, receipt)
          end
        end
      end
    end
  end
end
local role = string.sub(flags, 1, 1)
local isSeeder = role == '1'
local isPartial = role == 'p'
local newBinding = 0
if event == 's' then
  redis.call('ZREM', own, member)
  if storeIds then redis.call('HDEL', idKey, member) end
  redis.call('HDEL', rKey, member)
else
  local score = ARGV[3]
  redis.call('ZADD', own, score, member)
  extend(own, ARGV[4])
  if bind ~= '' then
    newBinding = redis.call('HSET', bKey, bind, score .. ':' .. member)
    extend(bKey, ARGV[4])
  end
  if storeIds then
    redis.call('HSET', idKey, member, ARGV[8])
    extend(idKey, ARGV[4])
  end
end

-- "completed" counts once per peer: not when the peer already is a live seeder.
local downloaded
local counted = 0
local receipt = ''
if event == 'c' and not wasSeeder then
  downloaded = redis.call('INCR', KEYS[3])
  counted = 1
  receipt = downloaded .. ':' .. ARGV[1]
  redis.call('HSET', rKey, member, receipt)
  extend(rKey, ARGV[4])
else
  downloaded = tonumber(redis.call('GET', KEYS[3]) or '0')
  if event == 'c' then
    local held = redis.call('HGET', rKey, member)
    if held then
      local at = string.match(held, '^%d+:(%d+)')
      if at and now - tonumber(at) <= tonumber(ARGV[4]) / 1000 then receipt = held end
    end
  end
end

if bind ~= '' and event == 's' then redis.call('HDEL', bKey, bind) end

local n = redis.call('ZCARD', own)
local nl = redis.call('ZCOUNT', own, '-inf', X_OFF)
local np = 0
if partials then np = redis.call('ZCOUNT', own, S_POFF, '+inf')
elseif isPartial and event ~= 's' then np = 1 end
local so, lo, po = 0, 0, 0
if hasOther then so, lo, po = live(other, b) end

-- Bindings of peers that expired or were announced to without their key are
-- dropped once they outnumber the live peers: amortized O(1) per announce.
-- The hash grows only by a new field, so that is when it is measured.
if newBinding == 1 then
  local fam = string.sub(bind, 1, 1)
  if redis.call('HLEN', bKey) > 2 * (n + so + lo) + 16 then
    local all = redis.call('HGETALL', bKey)
    for i = 1, #all, 2 do
      local v = all[i + 1]
      local sep = string.find(v, ':', 1, true)
      local key = string.sub(all[i], 1, 1) == fam and own or other
      local ps = redis.call('ZSCORE', key, string.sub(v, sep + 1))
      if not ps or tonumber(ps) ~= tonumber(string.sub(v, 1, sep - 1)) then
        redis.call('HDEL', bKey, all[i])
      end
    end
  end
end

-- Ranks 0..nl-1 are downloading leechers, then seeders, then partial seeds.
-- Seeders and partial seeds get downloading leechers, leechers get everyone:
-- one window at a random offset of that rank range, wrapping around. ZRANGE
-- by rank is ~4x cheaper than ZRANDMEMBER (docs/decisions.md, Sources). The
-- window is concatenated as it comes and the announcer cut out of the string
-- (every member of a family has one length): no Lua table is built per peer.
local out = ''
local want = tonumber(ARGV[6])
if event ~= 's' and want > 0 then
  local total, self = n, 1
  if isSeeder or isPartial then total, self = nl, 0 end
  if total - self > 0 then
    if want > total - self then want = total - self end
    local need = want + self
    local start = tonumber(ARGV[7]) % total
    local stop = math.min(start + need, total) - 1
    out = table.concat(redis.call('ZRANGE', own, string.format('%d', start), string.format('%d', stop)))
    if stop - start + 1 < need then
      out = out .. table.concat(redis.call('ZRANGE', own, '0', string.format('%d', need - (stop - start + 1) - 1)))
    end
    local w = #member
    if self == 1 then
      local at = 1
      while true do
        local p = string.find(out, member, at, true)
        if not p then break end
        if (p - 1) % w == 0 then
          out = string.sub(out, 1, p - 1) .. string.sub(out, p + w)
          break
        end
        at = p + 1
      end
    end
    out = string.sub(out, 1, want * w)
  end
end

local ids = ''
if string.sub(flags, 3, 3) == '1' and storeIds and #out > 0 then
  local w = #member
  local sampled = {}
  for i = 1, #out, w do sampled[#sampled + 1] = string.sub(out, i, i + w - 1) end
  local vals = redis.call('HMGET', idKey, unpack(sampled))
  local unknown = string.rep('\\0', 20)
  for i = 1, #vals do
    if not vals[i] then vals[i] = unknown end
  end
  ids = table.concat(vals)
end
return { (n - nl - np) + so, nl + np + lo, downloaded, out, ids, counted, receipt, np + po }
`,
);

/** KEYS p4 p6 d; ARGV now score. Returns {seeders, leechers, downloaded, partial seeds}, live peers only. */
export const SCRAPE = script(
  'scrape',
  PRUNE +
    `
local b = bounds(ARGV[1])
local s4, l4, p4 = live(KEYS[1], b)
local s6, l6, p6 = live(KEYS[2], b)
return { s4 + s6, l4 + l6, tonumber(redis.call('GET', KEYS[3]) or '0'), p4 + p6 }
`,
);

/**
 * KEYS p4 p6; ARGV now score, index (1|2) of the key a SCAN found.
 * A swarm is reported only from its first existing key, so a
 * SCAN that finds both keys of a swarm counts it once. Returns {} or the
 * live counts {s4, l4, s6, l6}.
 */
export const SWARM_STATS = script(
  'swarmStats',
  PRUNE +
    `
local b = bounds(ARGV[1])
if tonumber(ARGV[2]) == 2 and redis.call('EXISTS', KEYS[1]) == 1 then return {} end
local s4, l4 = live(KEYS[1], b)
local s6, l6 = live(KEYS[2], b)
return { s4, l4, s6, l6 }
`,
);

/**
 * KEYS p4 p6 i r b; ARGV now score, store ids '1'|'0'.
 * Returns {peers removed, 1 when this call emptied the swarm}.
 */
export const SWARM_GC = script(
  'swarmGc',
  PRUNE +
    `
local b = bounds(ARGV[1])
local idKey = ARGV[2] == '1' and KEYS[3]
local had = redis.call('EXISTS', KEYS[1], KEYS[2])
local rKey = redis.call('EXISTS', KEYS[4]) == 1 and KEYS[4]
local removed = prune(KEYS[1], b, idKey, rKey, true) + prune(KEYS[2], b, idKey, rKey, true)
local left = redis.call('EXISTS', KEYS[1], KEYS[2])
if left == 0 then redis.call('DEL', KEYS[3], KEYS[4], KEYS[5]) end
if had > 0 and left == 0 then return { removed, 1 } end
return { removed, 0 }
`,
);

/**
 * Shared rate-limit counts (docs/policy.md "Shared rate limits"): one hash
 * per window, field = address key, value = admitted count.
 * KEYS current window's hash, previous window's hash; ARGV the hash's TTL in
 * ms, then key, delta pairs. Returns {current, previous} per pair, flat.
 */
export const RATE_COUNTS = script(
  'rateCounts',
  `
local out = {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return out
`,
);

type Client = Redis | Cluster;
type Arg = string | Buffer | number;

/**
 * The script commands with Buffer replies. ioredis 6 defines evalshaBuffer and
 * evalBuffer on every client (and routes them through auto-pipelining, unlike
 * sendCommand) but its type declarations omit them.
 */
interface ScriptCommands {
  evalshaBuffer(sha: string, numKeys: number, ...keysAndArgs: Arg[]): Promise<unknown>;
  evalBuffer(lua: string, numKeys: number, ...keysAndArgs: Arg[]): Promise<unknown>;
}

/**
 * EVALSHA, and EVAL when the server answers NOSCRIPT (restart, failover to a
 * replica that never saw the script, SCRIPT FLUSH). ioredis routes both by
 * the first key on Cluster. The named commands, not callBuffer(): ioredis
 * 6.0.0's callBuffer() throws from a setImmediate under auto-pipelining
 * (Command.checkFlag gets a non-string name), which left every announce
 * unanswered with REDIS_AUTO_PIPELINING=true.
 */
export async function runScript(
  client: Client,
  s: Script,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown> {
  const commands = client as unknown as ScriptCommands;
  try {
    return await commands.evalshaBuffer(s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    // NOSCRIPT is the reply's error code (the first word), defined by Redis.
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return commands.evalBuffer(s.lua, keys.length, ...keys, ...args);
  }
}
