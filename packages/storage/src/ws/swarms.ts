// WebSocket peers and the relay of their offers and answers
// (docs/webtorrent.md "Design"). WebSocket peers are their own kind of peer:
// a browser reaches only other browsers, through WebRTC, so they live in
// their own swarms, apart from the TCP/UDP peers of the PeerStore. What the
// store keeps per peer is which gateway holds its socket; the relay carries
// an offer or an answer to that gateway, which writes it to the socket.
//
// Two interfaces, each with an in-process implementation here and one on
// Redis (redis.ts): WsSwarmStore (who is in a swarm, held by which gateway)
// and WsRelay (delivery to the holding gateway).
import type { AnnounceResult, PeerAnnounce, SwarmCounts } from '../types.ts';

/** One peer an announce's offers go to, and the gateway holding its socket. */
export interface WsTarget {
  peerId: Buffer;
  gateway: string;
}

/** The core's AnnounceResult with no compact peers: the offers' recipients instead. */
export interface WsAnnounceResult extends AnnounceResult {
  targets: WsTarget[];
}

export function isWsAnnounceResult(r: AnnounceResult): r is WsAnnounceResult {
  return 'targets' in r;
}

/** An announce from a socket held by `gateway`. */
export interface WsPeerAnnounce extends PeerAnnounce {
  gateway: string;
}

export interface WsPeerKey {
  infoHash: Buffer;
  peerId: Buffer;
}

export interface WsSwarmStore {
  /** memory | redis (metrics label, logs). */
  readonly driver: string;
  /**
   * Joins, updates or (event stopped) removes the peer as held by
   * `a.gateway`, then picks up to a.numWant other live peers of the swarm
   * at random: a seeder gets leechers only (docs/decisions.md "Tracker
   * semantics"). Counts are the swarm's after this announce.
   */
  announce(a: WsPeerAnnounce): WsAnnounceResult | Promise<WsAnnounceResult>;
  /** One entry per hash, in order; zeros for unknown swarms. */
  scrape(infoHashes: readonly Buffer[]): SwarmCounts[] | Promise<SwarmCounts[]>;
  /** The gateway holding the peer's socket; undefined when the peer is not in the swarm. */
  holder(infoHash: Buffer, peerId: Buffer): string | undefined | Promise<string | undefined>;
  /**
   * Removes peers whose socket `gateway` held (a closed socket, a gateway
   * found gone); a peer since re-announced through another gateway stays.
   */
  leave(gateway: string, peers: readonly WsPeerKey[]): void | Promise<void>;
  close(): Promise<void>;
}

/** An offer or an answer on its way to the gateway holding `peerId`'s socket. */
export interface RelayMessage {
  kind: 'offer' | 'answer';
  infoHash: Buffer;
  /** The recipient. */
  peerId: Buffer;
  /** The JSON text to write to the recipient's socket as it is. */
  frame: string;
  /** performance.timeOrigin + performance.now() when the sender's frame arrived: relay latency. */
  sentAt: number;
}

export type RelayHandler = (message: RelayMessage) => void;

export interface WsRelay {
  /**
   * Hands `message` to `gateway`. false (or a Promise of it) when no such
   * gateway listens: it is gone, and the caller removes the recipient
   * (docs/webtorrent.md "A gateway that dies").
   */
  send(gateway: string, message: RelayMessage): boolean | Promise<boolean>;
  /** Receives the messages sent to `gateway` until unlisten(). */
  listen(gateway: string, handler: RelayHandler): Promise<void>;
  unlisten(gateway: string): Promise<void>;
  close(): Promise<void>;
}

/** The current time for RelayMessage.sentAt: comparable across processes of one machine. */
export function relayNow(): number {
  return performance.timeOrigin + performance.now();
}

interface Entry {
  peerId: Buffer;
  gateway: string;
  seeder: boolean;
  expiresAt: number;
}

/** One swarm: an array for O(1) random picks and swap-removal, an index by peer_id. */
class Swarm {
  readonly list: Entry[] = [];
  readonly index = new Map<string, number>();
  seeders = 0;
  downloaded = 0;

  get(key: string): Entry | undefined {
    const i = this.index.get(key);
    return i === undefined ? undefined : this.list[i];
  }

  add(key: string, entry: Entry): void {
    this.index.set(key, this.list.length);
    this.list.push(entry);
    if (entry.seeder) this.seeders++;
  }

  remove(key: string): void {
    const i = this.index.get(key);
    if (i === undefined) return;
    const removed = this.list[i]!;
    const last = this.list.pop()!;
    if (last !== removed) {
      this.list[i] = last;
      this.index.set(last.peerId.toString('latin1'), i);
    }
    this.index.delete(key);
    if (removed.seeder) this.seeders--;
  }
}

export interface MemoryWsSwarmsOptions {
  /** A peer not heard from for this long is gone (WS_PEER_LIFETIME_SECONDS). */
  peerLifetimeSeconds: number;
  clock?: () => number;
  random?: () => number;
}

/**
 * Every swarm in this process: the memory topology, and the gateways of one
 * process in tests. Expired peers are never picked nor counted once swept;
 * sweep() runs on the frontend's timer.
 */
export class MemoryWsSwarms implements WsSwarmStore {
  readonly driver = 'memory';
  readonly #swarms = new Map<string, Swarm>();
  readonly #lifetimeMs: number;
  readonly #clock: () => number;
  readonly #random: () => number;

  constructor(options: MemoryWsSwarmsOptions) {
    this.#lifetimeMs = options.peerLifetimeSeconds * 1000;
    this.#clock = options.clock ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  announce(a: WsPeerAnnounce): WsAnnounceResult {
    const hashKey = a.infoHash.toString('latin1');
    const key = a.peerId.toString('latin1');
    let swarm = this.#swarms.get(hashKey);
    const now = this.#clock();
    if (a.event === 'stopped') {
      if (swarm !== undefined) {
        swarm.remove(key);
        if (swarm.list.length === 0 && swarm.downloaded === 0) this.#swarms.delete(hashKey);
      }
      return counted(swarm, []);
    }
    if (swarm === undefined) this.#swarms.set(hashKey, (swarm = new Swarm()));
    const lifetime = a.lifetimeSeconds === undefined ? this.#lifetimeMs : a.lifetimeSeconds * 1000;
    const entry = swarm.get(key);
    if (entry === undefined) {
      swarm.add(key, {
        peerId: a.peerId,
        gateway: a.gateway,
        seeder: a.seeder,
        expiresAt: now + lifetime,
      });
      if (a.event === 'completed') swarm.downloaded++;
    } else {
      if (a.event === 'completed' && !entry.seeder) swarm.downloaded++;
      if (entry.seeder !== a.seeder) swarm.seeders += a.seeder ? 1 : -1;
      entry.seeder = a.seeder;
      entry.gateway = a.gateway;
      entry.expiresAt = now + lifetime;
    }
    return counted(swarm, this.#pick(swarm, key, a, now));
  }

  scrape(infoHashes: readonly Buffer[]): SwarmCounts[] {
    return infoHashes.map((h) => {
      const swarm = this.#swarms.get(h.toString('latin1'));
      if (swarm === undefined) return { seeders: 0, leechers: 0, downloaded: 0 };
      return {
        seeders: swarm.seeders,
        leechers: swarm.list.length - swarm.seeders,
        downloaded: swarm.downloaded,
      };
    });
  }

  holder(infoHash: Buffer, peerId: Buffer): string | undefined {
    const entry = this.#swarms.get(infoHash.toString('latin1'))?.get(peerId.toString('latin1'));
    return entry === undefined || entry.expiresAt <= this.#clock() ? undefined : entry.gateway;
  }

  leave(gateway: string, peers: readonly WsPeerKey[]): void {
    for (const { infoHash, peerId } of peers) {
      const hashKey = infoHash.toString('latin1');
      const swarm = this.#swarms.get(hashKey);
      const key = peerId.toString('latin1');
      if (swarm?.get(key)?.gateway !== gateway) continue;
      swarm.remove(key);
      if (swarm.list.length === 0 && swarm.downloaded === 0) this.#swarms.delete(hashKey);
    }
  }

  /** Removes expired peers and empty swarms; returns how many peers went. */
  sweep(): number {
    const now = this.#clock();
    let removed = 0;
    for (const [hashKey, swarm] of this.#swarms) {
      for (let i = swarm.list.length - 1; i >= 0; i--) {
        const entry = swarm.list[i]!;
        if (entry.expiresAt > now) continue;
        swarm.remove(entry.peerId.toString('latin1'));
        removed++;
      }
      if (swarm.list.length === 0 && swarm.downloaded === 0) this.#swarms.delete(hashKey);
    }
    return removed;
  }

  close(): Promise<void> {
    this.#swarms.clear();
    return Promise.resolve();
  }

  /** Up to numWant live peers other than `self`, from a random start; a seeder gets leechers only. */
  #pick(swarm: Swarm, self: string, a: WsPeerAnnounce, now: number): WsTarget[] {
    const { list } = swarm;
    const n = list.length;
    const targets: WsTarget[] = [];
    if (a.numWant === 0 || n < 2) return targets;
    const start = Math.floor(this.#random() * n);
    for (let k = 0; k < n && targets.length < a.numWant; k++) {
      const e = list[(start + k) % n]!;
      if (e.expiresAt <= now || (a.seeder && e.seeder)) continue;
      if (e.peerId.toString('latin1') === self) continue;
      targets.push({ peerId: e.peerId, gateway: e.gateway });
    }
    return targets;
  }
}

function counted(swarm: Swarm | undefined, targets: WsTarget[]): WsAnnounceResult {
  const seeders = swarm?.seeders ?? 0;
  return {
    seeders,
    leechers: (swarm?.list.length ?? 0) - seeders,
    downloaded: swarm?.downloaded ?? 0,
    peers: NO_PEERS,
    peerIds: undefined,
    targets,
  };
}

const NO_PEERS = Buffer.alloc(0);

/** Delivery within one process: a gateway's handler is called at once. */
export class LocalRelay implements WsRelay {
  readonly #handlers = new Map<string, RelayHandler>();

  send(gateway: string, message: RelayMessage): boolean {
    const handler = this.#handlers.get(gateway);
    if (handler === undefined) return false;
    handler(message);
    return true;
  }

  listen(gateway: string, handler: RelayHandler): Promise<void> {
    this.#handlers.set(gateway, handler);
    return Promise.resolve();
  }

  unlisten(gateway: string): Promise<void> {
    this.#handlers.delete(gateway);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#handlers.clear();
    return Promise.resolve();
  }
}
