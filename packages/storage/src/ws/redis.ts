// The WebSocket swarms and relay on the embedded Redis, in every Redis
// topology (docs/webtorrent.md "Design"): several gateways on one Redis
// share the swarms, and each gateway subscribes to its own channel, on which
// the others publish the offers and answers for the browsers it holds. The
// publish answers how many subscribers got the message: 0 means the holding
// gateway is gone (its subscription died with its connection), and the
// sender takes its peer out (docs/webtorrent.md "A gateway that dies").
// That count is exact only where the channel lives on one server:
//   standalone, Sentinel  PUBLISH on the one primary;
//   Cluster               SPUBLISH/SSUBSCRIBE (sharded pub/sub, Redis 7.0):
//                         the channel lives on the master of its slot, and
//                         SPUBLISH counts that master's subscribers (PUBLISH
//                         would count one node's only, while the cluster bus
//                         carries the message to all);
//   ring                  PUBLISH on the shard the gateway id wins (ownerIndex,
//                         as swarms win theirs by info_hash).
//
// Keys of one swarm share the hash tag {<hex info_hash>} (docs/redis.md), so
// one Cluster slot and one ring shard hold the swarm:
//   ws:{h}:e  sorted set  peer_id -> expiry (ms)
//   ws:{h}:g  hash        peer_id -> holding gateway id
//   ws:{h}:s  set         peer_ids of the seeders
//   ws:{h}:d  string      downloads (event completed)
// Every announce sets their TTL to twice the peer lifetime, so an idle swarm vanishes.
import { once } from 'node:events';
import type {
  Client as RedisClient,
  RedisBackendClient,
  openRedisClients,
} from '../redis/connection.ts';
import { toStoreError, withDeadline } from '../redis/deadline.ts';
import { ownerIndex } from '../redis/ring.ts';
import type { SwarmCounts } from '../types.ts';
import type {
  RelayHandler,
  RelayMessage,
  WsAnnounceResult,
  WsPeerAnnounce,
  WsPeerKey,
  WsRelay,
  WsSwarmStore,
  WsTarget,
} from './swarms.ts';

/** Expired peers removed per announce at most: the sweep is spread over announces. */
const SWEEP_PER_ANNOUNCE = 64;

/**
 * Which connection serves a swarm and a gateway's relay channel: the one
 * backend (standalone, Sentinel, Cluster, which routes by key itself), or
 * the ring shard that wins the info_hash or the gateway id.
 */
export class RedisWsRoutes {
  readonly #clients: RedisClient[];
  readonly #names: string[];
  /** Cluster: sharded pub/sub. */
  readonly sharded: boolean;
  /** REDIS_COMMAND_TIMEOUT_MS: no answer by then is STORE_ERR_TIMEOUT. */
  readonly timeoutMs: number;

  constructor(backends: readonly RedisBackendClient[], timeoutMs: number) {
    if (backends.length === 0) throw new Error('no Redis backend');
    this.#clients = backends.map((b) => b.client);
    this.#names = backends.map((b) => b.name);
    this.sharded = backends.length === 1 && backends[0]!.cluster;
    this.timeoutMs = timeoutMs;
  }

  swarm(infoHash: Buffer): RedisClient {
    return this.#pick(infoHash);
  }

  channel(gateway: string): RedisClient {
    return this.#pick(Buffer.from(gateway, 'utf8'));
  }

  /** Every connection (close). */
  all(): readonly RedisClient[] {
    return this.#clients;
  }

  /** A coded StoreError (STORE_ERR_UNAVAILABLE, STORE_ERR_TIMEOUT) instead of ioredis's. */
  call<T>(p: Promise<T>): Promise<T> {
    return withDeadline(p, this.timeoutMs);
  }

  #pick(owner: Buffer): RedisClient {
    const clients = this.#clients;
    return clients.length === 1 ? clients[0]! : clients[ownerIndex(this.#names, owner)]!;
  }
}

// KEYS: e g s d. ARGV: peer_id, gateway, seeder (0/1), event, now, lifetime ms, numwant, random offset in [0,1).
// Returns { seeders, total, downloads, peer_id1, gateway1, ... }.
const ANNOUNCE = `
local e, g, s, d = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local peer, gw, seeder, event = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, life, want, offset = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local old = redis.call('ZRANGEBYSCORE', e, '-inf', now, 'LIMIT', 0, ${SWEEP_PER_ANNOUNCE})
for _, p in ipairs(old) do
  redis.call('ZREM', e, p)
  redis.call('HDEL', g, p)
  redis.call('SREM', s, p)
end
local targets = {}
if event == 'stopped' then
  redis.call('ZREM', e, peer)
  redis.call('HDEL', g, peer)
  redis.call('SREM', s, peer)
else
  local wasSeeder = redis.call('SISMEMBER', s, peer) == 1
  if event == 'completed' and not wasSeeder then redis.call('INCR', d) end
  redis.call('ZADD', e, now + life, peer)
  redis.call('HSET', g, peer, gw)
  if seeder == '1' then redis.call('SADD', s, peer) else redis.call('SREM', s, peer) end
  local ttl = life * 2
  for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end
  local n = redis.call('ZCARD', e)
  if want > 0 and n > 1 then
    local start = math.floor(offset * n)
    local span = math.min(n, want * 2 + 2)
    local ids = redis.call('ZRANGE', e, start, start + span - 1)
    if #ids < span then
      local more = redis.call('ZRANGE', e, 0, span - #ids - 1)
      for _, p in ipairs(more) do ids[#ids + 1] = p end
    end
    local picked = 0
    for _, p in ipairs(ids) do
      if picked >= want then break end
      if p ~= peer and (seeder ~= '1' or redis.call('SISMEMBER', s, p) == 0) then
        local at = tonumber(redis.call('ZSCORE', e, p))
        local holder = redis.call('HGET', g, p)
        if at ~= nil and at > now and holder then
          targets[#targets + 1] = p
          targets[#targets + 1] = holder
          picked = picked + 1
        end
      end
    end
  end
end
local result = { redis.call('SCARD', s), redis.call('ZCARD', e), tonumber(redis.call('GET', d) or '0') }
for _, t in ipairs(targets) do result[#result + 1] = t end
return result
`;

// KEYS: e g s. ARGV: gateway, peer_id... Removes the peers only where `gateway` still holds them.
const LEAVE = `
local e, g, s = KEYS[1], KEYS[2], KEYS[3]
for i = 2, #ARGV do
  local p = ARGV[i]
  if redis.call('HGET', g, p) == ARGV[1] then
    redis.call('ZREM', e, p)
    redis.call('HDEL', g, p)
    redis.call('SREM', s, p)
  end
end
return 0
`;

function keys(infoHash: Buffer): [string, string, string, string] {
  const tag = `ws:{${infoHash.toString('hex')}}`;
  return [`${tag}:e`, `${tag}:g`, `${tag}:s`, `${tag}:d`];
}

export interface RedisWsSwarmsOptions {
  peerLifetimeSeconds: number;
  clock?: () => number;
  random?: () => number;
}

export class RedisWsSwarms implements WsSwarmStore {
  readonly driver = 'redis';
  readonly #routes: RedisWsRoutes;
  readonly #lifetimeMs: number;
  readonly #clock: () => number;
  readonly #random: () => number;

  constructor(routes: RedisWsRoutes, options: RedisWsSwarmsOptions) {
    this.#routes = routes;
    this.#lifetimeMs = options.peerLifetimeSeconds * 1000;
    this.#clock = options.clock ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  async announce(a: WsPeerAnnounce): Promise<WsAnnounceResult> {
    const life = a.lifetimeSeconds === undefined ? this.#lifetimeMs : a.lifetimeSeconds * 1000;
    // Buffer replies: peer ids are raw bytes.
    const reply = (await this.#routes.call(
      this.#routes
        .swarm(a.infoHash)
        .callBuffer('EVAL', [
          ANNOUNCE,
          4,
          ...keys(a.infoHash),
          a.peerId,
          a.gateway,
          a.seeder ? '1' : '0',
          a.event,
          String(this.#clock()),
          String(life),
          String(a.numWant),
          String(this.#random()),
        ]),
    )) as Array<number | Buffer>;
    const seeders = Number(reply[0]);
    const targets: WsTarget[] = [];
    for (let i = 3; i + 1 < reply.length; i += 2)
      targets.push({ peerId: reply[i] as Buffer, gateway: (reply[i + 1] as Buffer).toString() });
    return {
      seeders,
      leechers: Number(reply[1]) - seeders,
      downloaded: Number(reply[2]),
      peers: NO_PEERS,
      peerIds: undefined,
      targets,
    };
  }

  /**
   * One pipeline per server (a ring shard), or per swarm on a Cluster,
   * whose pipelines must stay within one slot's node.
   */
  async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
    const now = String(this.#clock());
    const groups = new Map<RedisClient | Buffer, number[]>();
    infoHashes.forEach((h, i) => {
      const client = this.#routes.swarm(h);
      const group = this.#routes.sharded ? h : client;
      const list = groups.get(group);
      if (list === undefined) groups.set(group, [i]);
      else list.push(i);
    });
    const out: SwarmCounts[] = new Array<SwarmCounts>(infoHashes.length);
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const pipeline = this.#routes.swarm(infoHashes[indexes[0]!]!).pipeline();
        for (const i of indexes) {
          const [e, , s, d] = keys(infoHashes[i]!);
          pipeline.zcount(e, `(${now}`, '+inf').scard(s).get(d);
        }
        const replies = (await this.#routes.call(pipeline.exec())) ?? [];
        indexes.forEach((i, j) => {
          const value = (k: number): number => {
            const [err, v] = replies[j * 3 + k] ?? [null, 0];
            if (err) throw toStoreError(err);
            return Number(v ?? 0);
          };
          const live = value(0);
          // Seeders not swept yet may still be in the set: never more than the live peers.
          const seeders = Math.min(value(1), live);
          out[i] = { seeders, leechers: live - seeders, downloaded: value(2) };
        });
      }),
    );
    return out;
  }

  async holder(infoHash: Buffer, peerId: Buffer): Promise<string | undefined> {
    const [e, g] = keys(infoHash);
    const [[, at], [, gateway]] = ((await this.#routes.call(
      this.#routes.swarm(infoHash).pipeline().zscore(e, peerId).hget(g, peerId).exec(),
    )) ?? [
      [null, null],
      [null, null],
    ]) as [[unknown, string | null], [unknown, string | null]];
    if (at === null || gateway === null || Number(at) <= this.#clock()) return undefined;
    return gateway;
  }

  async leave(gateway: string, peers: readonly WsPeerKey[]): Promise<void> {
    const bySwarm = new Map<string, WsPeerKey[]>();
    for (const p of peers) {
      const k = p.infoHash.toString('hex');
      const list = bySwarm.get(k);
      if (list === undefined) bySwarm.set(k, [p]);
      else list.push(p);
    }
    await Promise.all(
      [...bySwarm.values()].map((list) => {
        const infoHash = list[0]!.infoHash;
        const [e, g, s] = keys(infoHash);
        return this.#routes.call(
          this.#routes
            .swarm(infoHash)
            .eval(LEAVE, 3, e, g, s, gateway, ...list.map((p) => p.peerId)),
        );
      }),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const NO_PEERS = Buffer.alloc(0);
const KINDS = ['offer', 'answer'] as const;
/** kind (1) + sentAt (8, double) + info_hash (20) + peer_id (20), then the frame. */
const HEADER = 49;

function channel(gateway: string): string {
  return `shoal:ws:${gateway}`;
}

export function encodeRelayMessage(m: RelayMessage): Buffer {
  const frame = Buffer.from(m.frame, 'utf8');
  const out = Buffer.allocUnsafe(HEADER + frame.length);
  out[0] = m.kind === 'offer' ? 0 : 1;
  out.writeDoubleBE(m.sentAt, 1);
  m.infoHash.copy(out, 9);
  m.peerId.copy(out, 29);
  frame.copy(out, HEADER);
  return out;
}

export function decodeRelayMessage(b: Buffer): RelayMessage | undefined {
  const kind = KINDS[b[0] ?? 2];
  if (b.length < HEADER || kind === undefined) return undefined;
  return {
    kind,
    sentAt: b.readDoubleBE(1),
    infoHash: Buffer.from(b.subarray(9, 29)),
    peerId: Buffer.from(b.subarray(29, 49)),
    frame: b.toString('utf8', HEADER),
  };
}

/**
 * Redis pub/sub, one channel per gateway (sharded on a Cluster); the
 * subscriber is a second connection made from the channel's.
 */
export class RedisRelay implements WsRelay {
  readonly #routes: RedisWsRoutes;
  readonly #handlers = new Map<string, RelayHandler>();
  readonly #subscribers = new Map<RedisClient, RedisClient>();

  constructor(routes: RedisWsRoutes) {
    this.#routes = routes;
  }

  async send(gateway: string, message: RelayMessage): Promise<boolean> {
    const client = this.#routes.channel(gateway);
    const payload = encodeRelayMessage(message);
    const name = channel(gateway);
    const reached = await this.#routes.call(
      this.#routes.sharded ? client.spublish(name, payload) : client.publish(name, payload),
    );
    return Number(reached) > 0;
  }

  async listen(gateway: string, handler: RelayHandler): Promise<void> {
    const sub = this.#subscriber(this.#routes.channel(gateway));
    if (sub.status !== 'ready') await once(sub, 'ready');
    this.#handlers.set(channel(gateway), handler);
    await (this.#routes.sharded
      ? sub.ssubscribe(channel(gateway))
      : sub.subscribe(channel(gateway)));
  }

  async unlisten(gateway: string): Promise<void> {
    this.#handlers.delete(channel(gateway));
    const sub = this.#subscribers.get(this.#routes.channel(gateway));
    if (sub?.status !== 'ready') return;
    await (this.#routes.sharded
      ? sub.sunsubscribe(channel(gateway))
      : sub.unsubscribe(channel(gateway)));
  }

  close(): Promise<void> {
    for (const sub of this.#subscribers.values()) sub.disconnect();
    this.#subscribers.clear();
    this.#handlers.clear();
    return Promise.resolve();
  }

  #subscriber(client: RedisClient): RedisClient {
    const known = this.#subscribers.get(client);
    if (known !== undefined) return known;
    // The same options (a Cluster's `shardedSubscribers` too); one call site per type.
    const sub: RedisClient = this.#routes.sharded
      ? (client as Extract<RedisClient, { nodes: unknown }>).duplicate()
      : (client as Exclude<RedisClient, { nodes: unknown }>).duplicate();
    // The subscriber's own errors (a ring shard down) are the channel
    // connection's too, and are reported there.
    sub.on('error', () => undefined);
    const deliver = (name: Buffer, payload: Buffer): void => {
      const handler = this.#handlers.get(name.toString());
      const message = handler === undefined ? undefined : decodeRelayMessage(payload);
      if (message !== undefined) handler!(message);
    };
    sub.on(this.#routes.sharded ? 'smessageBuffer' : 'messageBuffer', deliver);
    this.#subscribers.set(client, sub);
    return sub;
  }
}

/** Where one gateway's WebSocket peers live and how its offers reach the other gateways. */
export interface WsPlace {
  swarms: WsSwarmStore;
  relay: WsRelay;
  close(): Promise<void>;
}

/**
 * The shared swarms and relay of the embedded Redis topology (standalone,
 * Sentinel, Cluster or a ring); undefined for every other store, whose
 * gateways keep their WebSocket swarms in process or in the main thread's
 * hub (docs/webtorrent.md "Status").
 */
export function redisWsPlace(
  config: Parameters<typeof openRedisClients>[0] & {
    STORAGE_DRIVER: string;
    WS_ENABLED: boolean;
    WS_PEER_LIFETIME_SECONDS: number;
  },
  open: typeof openRedisClients,
  onError: (err: Error) => void,
): WsPlace | undefined {
  if (!config.WS_ENABLED || config.STORAGE_DRIVER !== 'redis') return undefined;
  const routes = new RedisWsRoutes(open(config, onError), config.REDIS_COMMAND_TIMEOUT_MS);
  const relay = new RedisRelay(routes);
  return {
    swarms: new RedisWsSwarms(routes, { peerLifetimeSeconds: config.WS_PEER_LIFETIME_SECONDS }),
    relay,
    close: async () => {
      await relay.close();
      for (const client of routes.all()) client.disconnect();
    },
  };
}
