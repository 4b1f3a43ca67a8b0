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
 * Added to a BEP 21 partial seed's score (twice SEEDER_OFFSET; the scripts
 * derive it from SEEDER_OFFSET). Above 2^31 listpack stores the score in 64
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

// Shared by the scripts: ARGV[1] is always the now score, ARGV[#ARGV]
// SEEDER_OFFSET. prune() drops expired peers' entries from the peer-id hash
// (when ids are stored) and from the receipt hash (when it exists).
const PRUNE = `
local OFF = tonumber(ARGV[#ARGV])
local POFF = 2 * OFF
local function expired(key, now)
  local gone = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE')
  local seeders = redis.call('ZRANGE', key, OFF, OFF + now, 'BYSCORE')
  for i = 1, #seeders do gone[#gone + 1] = seeders[i] end
  local partial = redis.call('ZRANGE', key, POFF, POFF + now, 'BYSCORE')
  for i = 1, #partial do gone[#gone + 1] = partial[i] end
  return gone
end
local function prune(key, now, idKey, rKey)
  local removed
  if rKey and redis.call('EXISTS', rKey) == 0 then rKey = false end
  if idKey or rKey then
    local gone = expired(key, now)
    for i = 1, #gone, 1000 do
      local j = math.min(i + 999, #gone)
      if idKey then redis.call('HDEL', idKey, unpack(gone, i, j)) end
      if rKey then redis.call('HDEL', rKey, unpack(gone, i, j)) end
    end
  end
  removed = redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  removed = removed + redis.call('ZREMRANGEBYSCORE', key, POFF, POFF + now)
  return removed + redis.call('ZREMRANGEBYSCORE', key, OFF, OFF + now)
end
-- A key's TTL only grows: a peer promised a longer lifetime (docs/load.md)
-- must outlive a later, shorter promise to another peer of the swarm.
local function extend(key, ms)
  if redis.call('PTTL', key) < tonumber(ms) then redis.call('PEXPIRE', key, ms) end
end
-- seeders, leechers (partial seeds included), partial seeds
local function live(key, now)
  local l = redis.call('ZCOUNT', key, '(' .. now, '(' .. OFF)
  local s = redis.call('ZCOUNT', key, '(' .. (OFF + now), '(' .. POFF)
  local p = redis.call('ZCOUNT', key, '(' .. (POFF + now), '+inf')
  return s, l + p, p
end
`;

/**
 * KEYS: 1 own-family peers, 2 other-family peers, 3 downloads, 4 peer-id hash,
 * 5 receipt hash, 6 key-hash bindings.
 * ARGV: 1 now score, 2 compact peer, 3 expiry score, 4 key TTL ms,
 * 5 role '1' seeder | 'p' partial seed | '0' leecher, 6 event 's'(stopped)|'c'(completed)|'n', 7 numwant,
 * 8 random integer, 9 want ids '1'|'0', 10 store ids '1'|'0', 11 peer_id,
 * 12 binding field (family digit + key hash) or '' without a key,
 * 13 SEEDER_OFFSET.
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
 */
export const ANNOUNCE = script(
  'announce',
  PRUNE +
    `
local own, other, idKey, rKey = KEYS[1], KEYS[2], KEYS[4], KEYS[5]
local now = tonumber(ARGV[1])
local member = ARGV[2]
local storeIds = ARGV[10] == '1'
prune(own, now, storeIds and idKey, rKey)

local old = redis.call('ZSCORE', own, member)
local wasSeeder = old and tonumber(old) >= OFF and tonumber(old) < POFF
local event = ARGV[6]

-- A client that moved: the entry its latest announce with this key hash
-- wrote, if nobody announced to it since, is replaced by this one
-- (docs/decisions.md "Peers that move"). Pruned already, so it is live.
local bKey, bind = KEYS[6], ARGV[12]
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
local isSeeder = ARGV[5] == '1'
local isPartial = ARGV[5] == 'p'
if event == 's' then
  redis.call('ZREM', own, member)
  if storeIds then redis.call('HDEL', idKey, member) end
  redis.call('HDEL', rKey, member)
else
  local score = tonumber(ARGV[3])
  if isSeeder then score = score + OFF elseif isPartial then score = score + POFF end
  redis.call('ZADD', own, score, member)
  extend(own, ARGV[4])
  if bind ~= '' then
    redis.call('HSET', bKey, bind, score .. ':' .. member)
    extend(bKey, ARGV[4])
  end
  if storeIds then
    redis.call('HSET', idKey, member, ARGV[11])
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
  receipt = downloaded .. ':' .. now
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
local nl = redis.call('ZCOUNT', own, '-inf', '(' .. OFF)
local np = redis.call('ZCOUNT', own, POFF, '+inf')
local so, lo, po = live(other, now)

-- Bindings of peers that expired or were announced to without their key are
-- dropped once they outnumber the live peers: amortized O(1) per announce.
if bind ~= '' then
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
-- by rank is ~4x cheaper than ZRANDMEMBER (docs/decisions.md, Sources).
local out = {}
local want = tonumber(ARGV[7])
if event ~= 's' and want > 0 then
  local total, self = n, 1
  if isSeeder or isPartial then total, self = nl, 0 end
  if total - self > 0 then
    if want > total - self then want = total - self end
    local need = want + self
    local start = tonumber(ARGV[8]) % total
    local stop = math.min(start + need, total) - 1
    local part = redis.call('ZRANGE', own, start, stop)
    if stop - start + 1 < need then
      local rest = redis.call('ZRANGE', own, 0, need - (stop - start + 1) - 1)
      for i = 1, #rest do part[#part + 1] = rest[i] end
    end
    for i = 1, #part do
      if part[i] ~= member and #out < want then out[#out + 1] = part[i] end
    end
  end
end

local ids = ''
if ARGV[9] == '1' and storeIds and #out > 0 then
  local vals = redis.call('HMGET', idKey, unpack(out))
  local unknown = string.rep('\\0', 20)
  for i = 1, #vals do
    if not vals[i] then vals[i] = unknown end
  end
  ids = table.concat(vals)
end
return { (n - nl - np) + so, nl + np + lo, downloaded, table.concat(out), ids, counted, receipt, np + po }
`,
);

/** KEYS p4 p6 d; ARGV now score, SEEDER_OFFSET. Returns {seeders, leechers, downloaded, partial seeds}, live peers only. */
export const SCRAPE = script(
  'scrape',
  PRUNE +
    `
local now = tonumber(ARGV[1])
local s4, l4, p4 = live(KEYS[1], now)
local s6, l6, p6 = live(KEYS[2], now)
return { s4 + s6, l4 + l6, tonumber(redis.call('GET', KEYS[3]) or '0'), p4 + p6 }
`,
);

/**
 * KEYS p4 p6; ARGV now score, index (1|2) of the key a SCAN found,
 * SEEDER_OFFSET. A swarm is reported only from its first existing key, so a
 * SCAN that finds both keys of a swarm counts it once. Returns {} or the
 * live counts {s4, l4, s6, l6}.
 */
export const SWARM_STATS = script(
  'swarmStats',
  PRUNE +
    `
local now = tonumber(ARGV[1])
if tonumber(ARGV[2]) == 2 and redis.call('EXISTS', KEYS[1]) == 1 then return {} end
local s4, l4 = live(KEYS[1], now)
local s6, l6 = live(KEYS[2], now)
return { s4, l4, s6, l6 }
`,
);

/**
 * KEYS p4 p6 i r b; ARGV now score, store ids '1'|'0', SEEDER_OFFSET.
 * Returns {peers removed, 1 when this call emptied the swarm}.
 */
export const SWARM_GC = script(
  'swarmGc',
  PRUNE +
    `
local now = tonumber(ARGV[1])
local idKey = ARGV[2] == '1' and KEYS[3]
local had = redis.call('EXISTS', KEYS[1], KEYS[2])
local removed = prune(KEYS[1], now, idKey, KEYS[4]) + prune(KEYS[2], now, idKey, KEYS[4])
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
