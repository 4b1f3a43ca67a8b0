// Redis lease lock: SET NX PX takes a free lease; a Lua compare-and-renew
// extends it only for its holder and a Lua compare-and-delete releases it only
// for its holder, so each call is one atomic round trip. Works on standalone
// and Sentinel (the lease key lives on the primary; the data of a lease lost
// in a failover is at most one TTL old, and the next renewal re-takes it).
// Ring mode uses the first shard, as the KV data does.
import { createHash } from 'node:crypto';
import { Command } from 'ioredis';
import { StoreError } from '../errors.ts';
import { checkRedisStoreConfig, type RedisStoreConfig } from '../redis/config.ts';
import { backendSpecs, createBackend, type Client, type ErrorSink } from '../redis/connection.ts';
import { withDeadline } from '../redis/deadline.ts';
import { checkLeaseArgs, type LeaseLock, type LeaseState } from './types.ts';

// KEYS[1] lease key; ARGV[1] holder, ARGV[2] ttl ms.
// Returns {1, holder, pttl} when ARGV[1] holds it now, else {0, holder, pttl}.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, ARGV[1], tonumber(ARGV[2])}
end
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, cur, tonumber(ARGV[2])}
end
if not cur then
  return {0, false, -2}
end
return {0, cur, redis.call('PTTL', KEYS[1])}
`;

// KEYS[1] lease key; ARGV[1] holder. 1 when deleted.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

const sha = (lua: string): string => createHash('sha1').update(lua).digest('hex');
const ACQUIRE_SHA = sha(ACQUIRE);
const RELEASE_SHA = sha(RELEASE);

async function evalScript(
  client: Client,
  lua: string,
  digest: string,
  key: string,
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await client.sendCommand(
      new Command('evalsha', [digest, 1, key, ...args], { replyEncoding: 'utf8' }),
    );
  } catch (err) {
    // NOSCRIPT is the reply's error code (its first word), defined by Redis.
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.sendCommand(
      new Command('eval', [lua, 1, key, ...args], { replyEncoding: 'utf8' }),
    );
  }
}

export interface RedisLeaseLockOptions {
  /** Connection trouble reported by ioredis; never thrown. */
  onError?: ErrorSink;
  /** ms since the epoch, for expiresAt. Default Date.now. */
  clock?: () => number;
}

/**
 * Connects to the first backend of `config` (standalone, Sentinel primary,
 * Cluster, or the ring's first shard); waits up to REDIS_CONNECT_TIMEOUT_MS
 * and resolves either way, so a lock created before Redis is up starts
 * working when it is.
 */
export async function createRedisLeaseLock(
  config: RedisStoreConfig,
  options: RedisLeaseLockOptions = {},
): Promise<LeaseLock> {
  const problems = checkRedisStoreConfig(config);
  if (problems.length > 0)
    throw new StoreError(
      'STORE_ERR_CONFIG',
      problems.map((p) => `${p.key}: ${p.message}`).join('; '),
    );
  const clock = options.clock ?? Date.now;
  const spec = backendSpecs(config)[0];
  if (spec === undefined) throw new StoreError('STORE_ERR_CONFIG', 'no Redis backend configured');
  const backend = createBackend(spec, config, options.onError ?? (() => undefined));
  await backend.ready(config.REDIS_CONNECT_TIMEOUT_MS);
  const keyOf = (name: string): string => `${config.REDIS_KEY_PREFIX}lease:{${name}}`;
  const timeout = config.REDIS_COMMAND_TIMEOUT_MS;
  let closed = false;
  const check = (name: string, holder: string, ttlMs?: number): void => {
    if (closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'lease lock closed');
    const problem = checkLeaseArgs(name, holder, ttlMs);
    if (problem !== undefined) throw new StoreError('STORE_ERR_BAD_INPUT', problem);
  };

  return {
    async acquire(name, holder, ttlMs): Promise<LeaseState> {
      check(name, holder, ttlMs);
      const sentAt = clock();
      const reply = (await withDeadline(
        evalScript(backend.next(), ACQUIRE, ACQUIRE_SHA, keyOf(name), [holder, ttlMs]),
        timeout,
      )) as [number, string | null, number];
      const [won, cur, pttl] = reply;
      if (cur === null || pttl < 0) return { held: false, holder: null, expiresAt: null };
      return { held: won === 1, holder: cur, expiresAt: sentAt + pttl };
    },
    async release(name, holder) {
      check(name, holder);
      const n = await withDeadline(
        evalScript(backend.next(), RELEASE, RELEASE_SHA, keyOf(name), [holder]),
        timeout,
      );
      return n === 1;
    },
    close() {
      if (!closed) {
        closed = true;
        backend.close();
      }
      return Promise.resolve();
    },
  };
}
