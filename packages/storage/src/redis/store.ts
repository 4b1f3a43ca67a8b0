// The Redis PeerStore + DataStore. Key layout and scripts:
// scripts.ts; connection handling: connection.ts; ring placement: ring.ts;
// decisions: docs/redis.md.
import { StoreError } from '../errors.ts';
import {
  TopSwarms,
  lifetimeOf,
  validateAnnounce,
  validateInfoHashes,
  validateRateCounts,
  validateTopLimit,
} from '../validate.ts';
import type {
  AnnounceResult,
  DataStore,
  DownloadCounter,
  GcResult,
  PeerAnnounce,
  PeerStore,
  StoreOptions,
  StoreStats,
  SwarmCounts,
  TopSwarm,
} from '../types.ts';
import type {
  RateCounters,
  RateCounts,
  ReconfigureResult,
  Reconfigurable,
  TopSwarms as TopSwarmsCapability,
} from '../capabilities.ts';
import type { StoreConfig } from '../open/config.ts';
import { checkRedisStoreConfig, type RedisStoreConfig } from './config.ts';
import {
  backendSpecs,
  createBackend,
  sameSpec,
  type Backend,
  type Client,
  type ErrorSink,
} from './connection.ts';
import { toStoreError, withDeadline } from './deadline.ts';
import { ownerIndex } from './ring.ts';
import {
  ANNOUNCE,
  PARTIAL_SEED_OFFSET,
  RATE_COUNTS,
  SCRAPE,
  SEEDER_OFFSET,
  SWARM_GC,
  SWARM_STATS,
  expiryScore,
  nowScore,
  runScript,
} from './scripts.ts';

export interface RedisStoreOptions extends StoreOptions {
  /** Connection trouble reported by ioredis (reconnect attempts, socket errors); never thrown. */
  onError?: ErrorSink;
}

export interface RedisStore
  extends PeerStore, DataStore, DownloadCounter, RateCounters, TopSwarmsCapability, Reconfigurable {
  readonly driver: 'redis';
  /** Ring shard (or backend) name that holds a swarm. */
  shardOf(infoHash: Buffer): string;
  /**
   * Applies new settings at run time (config reload). In ring mode only the
   * swarms of added or removed shards change owner; their download counters
   * follow them when the old shard is reachable. Other modes reconnect.
   * Takes the driver's settings, or a StoreConfig naming the redis driver.
   */
  reconfigure(config: RedisStoreConfig | StoreConfig): Promise<ReconfigureResult>;
  close(): Promise<void>;
}

const SUFFIXES = ['p4', 'p6'] as const;
const MOVED_RECEIPT = /^(\d+:\d+):([0-9a-f]+)$/;
const FAMILY_4 = Buffer.from('4');
const FAMILY_6 = Buffer.from('6');
const OWN_FIRST_4 = ['p4', 'p6', 'd', 'i', 'r', 'b'] as const;
const OWN_FIRST_6 = ['p6', 'p4', 'd', 'i', 'r', 'b'] as const;

/** The announce script's flags argument: role, event, want ids, store ids (scripts.ts ANNOUNCE). */
function announceFlags(a: PeerAnnounce, storeIds: boolean): string {
  const role = a.seeder ? '1' : a.partialSeed === true ? 'p' : '0';
  const event = a.event === 'stopped' ? 's' : a.event === 'completed' ? 'c' : 'n';
  return role + event + (a.withPeerIds ? '1' : '0') + (storeIds ? '1' : '0');
}

/** A reconfigure cannot change the driver: only another Redis config applies. */
function redisSettingsOf(given: RedisStoreConfig | StoreConfig): RedisStoreConfig {
  if (!('driver' in given)) return given;
  if (given.driver === 'redis') return given.redis;
  throw new StoreError(
    'STORE_ERR_CONFIG',
    `a running redis store cannot become ${given.driver} without a restart`,
  );
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

export function validateConfig(config: RedisStoreConfig): void {
  const problems = checkRedisStoreConfig(config);
  if (problems.length > 0)
    throw new StoreError(
      'STORE_ERR_CONFIG',
      problems.map((p) => `${p.key}: ${p.message}`).join('; '),
    );
}

/**
 * Waits up to REDIS_CONNECT_TIMEOUT_MS for the connections, then resolves
 * either way: a tracker that boots before Redis answers STORE_ERR_UNAVAILABLE
 * (and fails /readyz via ping) until Redis is reachable, then serves without
 * a restart. Invalid settings reject with STORE_ERR_CONFIG.
 */
export async function createRedisStore(
  config: RedisStoreConfig,
  opts: RedisStoreOptions,
): Promise<RedisStore> {
  validateConfig(config);
  const clock = opts.clock ?? Date.now;
  const onError: ErrorSink = opts.onError ?? (() => undefined);

  let cfg = config;
  let backends: Backend[] = backendSpecs(cfg).map((s) => createBackend(s, cfg, onError));
  let names = backends.map((b) => b.name);
  let closed = false;

  const prefix = (): string => cfg.REDIS_KEY_PREFIX;
  const timeout = (): number => cfg.REDIS_COMMAND_TIMEOUT_MS;
  // `<prefix>{<infohash, base64url>}<suffix>`: 30 bytes with the default
  // empty prefix, so Redis keeps the key in a 32-byte allocation
  // (docs/redis.md "Memory").
  const tagOf = (infoHash: Buffer): string => `${prefix()}{${infoHash.toString('base64url')}}`;
  const backendOf = (infoHash: Buffer): Backend =>
    backends.length === 1 ? backends[0]! : backends[ownerIndex(names, infoHash)]!;
  /** KV data and nothing else lives on the first backend (ring: first shard listed). */
  const dataClient = (): Client => backends[0]!.next();
  const kvKey = (context: string): string => `${prefix()}kv:${context}`;
  const open = (): void => {
    if (closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'store closed');
  };

  async function forEachSwarmKey(
    visit: (client: Client, tag: string, idx: number) => Promise<void>,
  ): Promise<void> {
    const match = `${globEscape(prefix())}{*}p[46]`;
    await Promise.all(
      backends.map(async (backend) => {
        const router = backend.next();
        for (const node of backend.primaries()) {
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
            cursor = next;
            await Promise.all(
              keys.map((key) => {
                const idx = SUFFIXES.indexOf(key.slice(-2) as (typeof SUFFIXES)[number]);
                return visit(router, key.slice(0, -2), idx + 1);
              }),
            );
          } while (cursor !== '0');
        }
      }),
    );
  }

  /**
   * Every swarm's live counts [seeders v4, leechers v4, seeders v6, leechers v6]
   * (SCAN, one script per swarm; never on the announce path).
   */
  async function forEachSwarmCounts(
    visit: (tag: string, counts: [number, number, number, number]) => void,
  ): Promise<void> {
    const now = nowScore(clock());
    try {
      await forEachSwarmKey(async (client, tag, idx) => {
        const counts = (await runScript(
          client,
          SWARM_STATS,
          SUFFIXES.map((s) => tag + s),
          [now, idx],
        )) as number[];
        if (counts.length !== 4) return;
        visit(tag, counts.map(Number) as [number, number, number, number]);
      });
    } catch (err) {
      throw toStoreError(err);
    }
  }

  async function migrateDownloads(
    from: Backend[],
    target: (infoHash: Buffer) => Backend,
    unreachable: string[],
  ): Promise<number> {
    let moved = 0;
    const match = `${globEscape(prefix())}{*}d`;
    const tagged = /\{([A-Za-z0-9_-]{27})\}d$/;
    for (const backend of from) {
      try {
        for (const node of backend.primaries()) {
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
            cursor = next;
            for (const key of keys) {
              const encoded = tagged.exec(key)?.[1];
              if (encoded === undefined) continue;
              const to = target(Buffer.from(encoded, 'base64url'));
              if (to === backend) continue;
              const value = await backend.next().getdel(key);
              if (value === null) continue;
              try {
                await to.next().incrby(key, Number(value));
                moved++;
              } catch (err) {
                // Put it back rather than lose a durable count.
                await backend.next().incrby(key, Number(value));
                throw err;
              }
            }
          } while (cursor !== '0');
        }
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)), backend.name);
        unreachable.push(backend.name);
      }
    }
    return moved;
  }

  const store: RedisStore = {
    driver: 'redis',

    async announce(a: PeerAnnounce): Promise<AnnounceResult> {
      validateAnnounce(a);
      open();
      const now = clock();
      const tag = tagOf(a.infoHash);
      const keys = (a.family === 4 ? OWN_FIRST_4 : OWN_FIRST_6).map((s) => tag + s);
      const member = Buffer.allocUnsafe(a.address.length + 2);
      a.address.copy(member, 0);
      member.writeUInt16BE(a.port, a.address.length);
      const storeIds = cfg.REDIS_STORE_PEER_IDS;
      const peerLifetimeMs = lifetimeOf(a, opts.peerLifetimeSeconds) * 1000;
      const args = [
        nowScore(now),
        member,
        expiryScore(now, peerLifetimeMs) +
          (a.seeder ? SEEDER_OFFSET : a.partialSeed === true ? PARTIAL_SEED_OFFSET : 0),
        peerLifetimeMs,
        announceFlags(a, storeIds),
        a.numWant,
        (Math.random() * 0x7fffffff) | 0,
        storeIds ? a.peerId : '',
        // docs/decisions.md "Peers that move": bindings are per family.
        a.keyHash === undefined
          ? ''
          : Buffer.concat([a.family === 4 ? FAMILY_4 : FAMILY_6, a.keyHash]),
      ];
      const reply = (await withDeadline(
        runScript(backendOf(a.infoHash).next(), ANNOUNCE, keys, args),
        timeout(),
      )) as [number, number, number, Buffer, Buffer, number, Buffer, number];
      const [seeders, leechers, downloaded, peers, ids, counted, token, partialSeeds] = reply;
      let peerIds: Buffer[] | undefined;
      if (a.withPeerIds && storeIds) {
        peerIds = [];
        for (let o = 0; o + 20 <= ids.length; o += 20) peerIds.push(ids.subarray(o, o + 20));
      }
      const result: AnnounceResult = {
        seeders: Number(seeders),
        leechers: Number(leechers),
        downloaded: Number(downloaded),
        partialSeeds: Number(partialSeeds),
        peers,
        peerIds,
        downloadCounted: Number(counted) === 1,
      };
      // `<compact peer hex>:<download count>:<now score>`: unique per swarm
      // even if Redis loses `d` and the count starts again. A receipt that
      // moved with its client (docs/decisions.md "Peers that move") carries
      // the member it was counted at as a third part.
      if (token.length > 0) {
        const t = token.toString('latin1');
        const moved = MOVED_RECEIPT.exec(t);
        result.downloadReceipt =
          moved === null ? `${member.toString('hex')}:${t}` : `${moved[2]}:${moved[1]}`;
      }
      return result;
    },

    async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
      validateInfoHashes(infoHashes);
      open();
      if (infoHashes.length === 0) return [];
      const now = nowScore(clock());
      const replies = await withDeadline(
        Promise.all(
          infoHashes.map((h) => {
            const tag = tagOf(h);
            const keys = [...SUFFIXES.map((s) => tag + s), `${tag}d`];
            return runScript(backendOf(h).next(), SCRAPE, keys, [now]) as Promise<
              [number, number, number, number]
            >;
          }),
        ),
        timeout(),
      );
      return replies.map(([s, l, d, p]) => ({
        seeders: Number(s),
        leechers: Number(l),
        downloaded: Number(d),
        partialSeeds: Number(p),
      }));
    },

    async collectGarbage(): Promise<GcResult> {
      open();
      const now = nowScore(clock());
      const storeIds = cfg.REDIS_STORE_PEER_IDS ? '1' : '0';
      const result: GcResult = { peersRemoved: 0, swarmsRemoved: 0 };
      try {
        await forEachSwarmKey(async (client, tag) => {
          const keys = [...SUFFIXES.map((s) => tag + s), `${tag}i`, `${tag}r`, `${tag}b`];
          const [removed, emptied] = (await runScript(client, SWARM_GC, keys, [now, storeIds])) as [
            number,
            number,
          ];
          result.peersRemoved += Number(removed);
          result.swarmsRemoved += Number(emptied);
        });
      } catch (err) {
        throw toStoreError(err);
      }
      return result;
    },

    async stats(): Promise<StoreStats> {
      open();
      const stats: StoreStats = {
        torrents: 0,
        seeders: { v4: 0, v6: 0 },
        leechers: { v4: 0, v6: 0 },
      };
      await forEachSwarmCounts((_tag, [s4, l4, s6, l6]) => {
        stats.seeders.v4 += s4;
        stats.leechers.v4 += l4;
        stats.seeders.v6 += s6;
        stats.leechers.v6 += l6;
        if (s4 + l4 + s6 + l6 > 0) stats.torrents++;
      });
      return stats;
    },

    // The walk stats() makes, keeping the largest.
    async topSwarms(limit: number): Promise<TopSwarm[]> {
      validateTopLimit(limit);
      open();
      const top = new TopSwarms(limit);
      const tagged = /\{([A-Za-z0-9_-]{27})\}$/;
      await forEachSwarmCounts((tag, [s4, l4, s6, l6]) => {
        const encoded = tagged.exec(tag)?.[1];
        if (encoded !== undefined) top.add(Buffer.from(encoded, 'base64url'), s4 + s6, l4 + l6);
      });
      return top.result();
    },

    async ping(): Promise<void> {
      open();
      const results = await Promise.allSettled(
        backends.map((b) => withDeadline(b.next().ping(), timeout())),
      );
      // A ring with one shard down still serves the others' swarms, so it is
      // ready while any shard answers; a single backend must answer.
      const firstFailure = results.find((r) => r.status === 'rejected');
      if (
        results.some((r) => r.status === 'fulfilled') &&
        (backends.length > 1 || firstFailure === undefined)
      )
        return;
      throw toStoreError(firstFailure?.reason);
    },

    shardOf(infoHash: Buffer): string {
      return backendOf(infoHash).name;
    },

    async reconfigure(given: RedisStoreConfig | StoreConfig): Promise<ReconfigureResult> {
      const next = redisSettingsOf(given);
      validateConfig(next);
      open();
      const specs = backendSpecs(next);
      const {
        REDIS_RING_SHARDS: _a,
        REDIS_ADDRESSES: _b,
        REDIS_SENTINELS: _c,
        ...connectionNext
      } = next;
      const {
        REDIS_RING_SHARDS: _d,
        REDIS_ADDRESSES: _e,
        REDIS_SENTINELS: _f,
        ...connectionNow
      } = cfg;
      const sameConnection = JSON.stringify(connectionNext) === JSON.stringify(connectionNow);
      const kept: Backend[] = [];
      const nextBackends = specs.map((spec) => {
        const existing = sameConnection
          ? backends.find((b) => b.name === spec.name && sameSpec(b.spec, spec))
          : undefined;
        if (existing) {
          kept.push(existing);
          return existing;
        }
        return createBackend(spec, next, onError);
      });
      await Promise.all(
        nextBackends
          .filter((b) => !kept.includes(b))
          .map((b) => b.ready(next.REDIS_CONNECT_TIMEOUT_MS)),
      );
      const old = backends;
      const nextNames = nextBackends.map((b) => b.name);
      const removed = old.filter((b) => !kept.includes(b));
      const unreachable: string[] = [];
      // Switch first so new announces go to the new owners, then move the
      // durable download counters of the swarms that changed shard.
      backends = nextBackends;
      names = nextNames;
      cfg = next;
      let moved = 0;
      if (next.REDIS_MODE === 'ring') {
        moved = await migrateDownloads(
          old,
          (h) => nextBackends[ownerIndex(nextNames, h)]!,
          unreachable,
        );
      }
      for (const b of removed) b.close();
      return {
        added: nextBackends.filter((b) => !kept.includes(b)).map((b) => b.name),
        removed: removed.map((b) => b.name),
        kept: kept.map((b) => b.name),
        downloadCountersMoved: moved,
        unreachable,
      };
    },

    // The counters the announce script INCRs (`<tag>d`, no TTL), on the swarm's own shard.
    async addDownloads(
      increments: ReadonlyArray<readonly [infoHash: Buffer, count: number]>,
    ): Promise<void> {
      validateInfoHashes(increments.map(([h]) => h));
      open();
      await withDeadline(
        Promise.all(
          increments.map(([h, n]) =>
            backendOf(h)
              .next()
              .incrby(`${tagOf(h)}d`, n),
          ),
        ),
        timeout(),
      );
    },

    async downloads(infoHashes: readonly Buffer[]): Promise<number[]> {
      validateInfoHashes(infoHashes);
      open();
      const values = await withDeadline(
        Promise.all(
          infoHashes.map((h) =>
            backendOf(h)
              .next()
              .get(`${tagOf(h)}d`),
          ),
        ),
        timeout(),
      );
      return values.map((v) => (v === null ? 0 : Number(v)));
    },

    // Beside the KV data (first backend; one hash tag so Cluster runs the
    // script): docs/policy.md "Shared rate limits".
    async addRateCounts(
      window: number,
      windowMs: number,
      keys: readonly string[],
      deltas: readonly number[],
    ): Promise<RateCounts> {
      validateRateCounts(window, windowMs, keys, deltas);
      open();
      const args: Array<string | number> = [2 * windowMs + 1000];
      for (let i = 0; i < keys.length; i++) args.push(keys[i]!, deltas[i]!);
      const reply = (await withDeadline(
        runScript(
          dataClient(),
          RATE_COUNTS,
          [`${prefix()}{rl}${window}`, `${prefix()}{rl}${window - 1}`],
          args,
        ),
        timeout(),
      )) as number[];
      const counts: RateCounts = { current: [], previous: [] };
      for (let i = 0; i + 1 < reply.length; i += 2) {
        counts.current.push(Number(reply[i]));
        counts.previous.push(Number(reply[i + 1]));
      }
      return counts;
    },

    async get(context: string, key: string): Promise<string | undefined> {
      open();
      const v = await withDeadline(dataClient().hget(kvKey(context), key), timeout());
      return v ?? undefined;
    },

    async put(context: string, key: string, value: string): Promise<void> {
      open();
      await withDeadline(dataClient().hset(kvKey(context), key, value), timeout());
    },

    async delete(context: string, key: string): Promise<boolean> {
      open();
      return (await withDeadline(dataClient().hdel(kvKey(context), key), timeout())) === 1;
    },

    async list(context: string): Promise<Array<[key: string, value: string]>> {
      open();
      const all = await withDeadline(dataClient().hgetall(kvKey(context)), timeout());
      return Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    },

    close(): Promise<void> {
      if (!closed) {
        closed = true;
        for (const b of backends) b.close();
      }
      return Promise.resolve();
    },
  };
  await Promise.all(backends.map((b) => b.ready(cfg.REDIS_CONNECT_TIMEOUT_MS)));
  return store;
}
