// The tracker core (docs/architecture.md): one announce and one scrape
// pipeline for every frontend. It runs the steps in STEP_ORDER, calls the
// store, and leaves decoding, the client's address and encoding to the
// frontend's context. Built once; nothing here allocates per request beyond
// what the store does.
import type { AnnounceRequest } from '@shoal/protocol';
import { hasSyncAnnounce, type AnnounceResult, type PeerAnnounce } from '@shoal/storage';
import type { PeerAddress } from '../client-address.ts';
import { GatewayError } from '../errors.ts';
import { peerKeyHash } from './peer-key.ts';
import type { AnnounceLoad } from '../load/control.ts';
import type { GatewayStorage } from '../storage.ts';
import {
  STEP_ORDER,
  type AnnounceContext,
  type RequestContext,
  type ScrapeContext,
  type ScrapeFile,
  type Step,
  type StepName,
} from './types.ts';

type SyncAnnounce = (a: PeerAnnounce) => AnnounceResult;

/**
 * What the core answers an announce with: the store's result for the
 * peer's own family, plus, when the peer was also registered at an address
 * of the other family (BEP 7, AnnounceContext.alsoAt), the peers of that
 * family (docs/decisions.md "BEP 7 addresses").
 */
export interface TrackerAnswer extends AnnounceResult {
  other?: Pick<AnnounceResult, 'peers' | 'peerIds'>;
}
type Check = (ctx: AnnounceContext, request: AnnounceRequest) => void;

export interface AnnouncePolicy {
  numWantDefault: number;
  numWantMax: number;
  /** MOVE_PEERS_BY_KEY: announces carry the hash of peer_id and key (docs/decisions.md "Peers that move"). Absent: true. */
  movePeersByKey?: boolean;
}

/** What the core asks of a store: the gateway's PeerStore, or the WebSocket swarms (docs/webtorrent.md). */
export type TrackerStore = Pick<GatewayStorage, 'announce' | 'scrape'>;

export interface TrackerOptions {
  storage: TrackerStore;
  /** Any order: the core runs them in STEP_ORDER. */
  steps: readonly Step[];
  policy: AnnouncePolicy;
  /** ANNOUNCE_INTERVAL_SECONDS, before jitter. */
  intervalSeconds: number;
  /** The load-adaptive interval, promised lifetimes and shedding (docs/load.md); absent: a fixed interval. */
  load?: AnnounceLoad;
}

const NO_PEERS = Buffer.alloc(0);
/** docs/load.md "Shedding": a shed announce's answer, no store touched. */
const SHED: AnnounceResult = {
  seeders: 0,
  leechers: 0,
  downloaded: 0,
  peers: NO_PEERS,
  peerIds: undefined,
};

export class Tracker {
  /** The steps' names in the order they run. */
  readonly steps: readonly StepName[];
  readonly #storage: TrackerStore;
  readonly #policy: AnnouncePolicy;
  readonly #intervalSeconds: number;
  /** The store's synchronous announce, when it has one (embedded drivers). */
  readonly #storeSync: SyncAnnounce | undefined;
  /** Set only when every step and the store answer synchronously: announce() returns no Promise then. */
  readonly #fast: SyncAnnounce | undefined;
  /** No step waits: authorize() answers without a Promise. */
  readonly #syncSteps: boolean;
  readonly #admit: ReadonlyArray<(ctx: RequestContext) => void>;
  /** The announce checks of the synchronous path. */
  readonly #checks: readonly Check[];
  /** The announce steps, synchronous or not, for the path that may wait. */
  readonly #announceSteps: readonly Step[];
  readonly #scrapeChecks: ReadonlyArray<(ctx: ScrapeContext) => void>;
  readonly #hides: ReadonlyArray<(infoHash: Buffer) => boolean>;
  readonly #connect: ((peer: PeerAddress, nowMs: number) => boolean) | undefined;
  readonly #interval: ((seconds: number) => number) | undefined;
  readonly #swarm: ((infoHash: Buffer) => Buffer) | undefined;
  readonly #load: AnnounceLoad | undefined;
  /** Announces handed to an asynchronous store and not yet answered. */
  #waiting = 0;
  readonly #drops: Step['drops'];
  readonly #strike: Step['strike'];

  constructor(options: TrackerOptions) {
    const steps = [...options.steps].sort(
      (a, b) => STEP_ORDER.indexOf(a.name) - STEP_ORDER.indexOf(b.name),
    );
    this.steps = steps.map((s) => s.name);
    if (new Set(this.steps).size !== steps.length)
      throw new Error(`a step appears twice: ${this.steps.join(', ')}`);
    this.#storage = options.storage;
    this.#policy = options.policy;
    this.#intervalSeconds = options.intervalSeconds;
    this.#load = options.load;
    const { storage } = options;
    this.#storeSync = hasSyncAnnounce(storage) ? storage.announceSync.bind(storage) : undefined;
    this.#admit = present(steps.map((s) => s.admit));
    this.#checks = present(steps.map((s) => s.announce));
    this.#announceSteps = steps.filter((s) => s.announce ?? s.announceAsync);
    this.#scrapeChecks = present(steps.map((s) => s.scrape));
    this.#hides = present(steps.map((s) => s.hides));
    const connects = present(steps.map((s) => s.connect));
    this.#connect =
      connects.length <= 1 ? connects[0] : (peer, nowMs) => connects.every((c) => c(peer, nowMs));
    this.#drops = present(steps.map((s) => s.drops))[0];
    this.#strike = present(steps.map((s) => s.strike))[0];
    const intervals = present(steps.map((s) => s.interval));
    this.#interval = intervals.length === 0 ? undefined : intervals[0];
    this.#swarm = present(steps.map((s) => s.swarm))[0];
    this.#syncSteps = !steps.some((s) => s.announceAsync !== undefined);
    this.#fast = this.#syncSteps ? this.#storeSync : undefined;
  }

  /** True when announce() answers without a Promise (every step and the store are synchronous). */
  get synchronous(): boolean {
    return this.#fast !== undefined;
  }

  /** Announces waiting on the store now (docs/load.md "The load figure"). */
  get waiting(): number {
    return this.#waiting;
  }

  /** UDP connects: false when the rate limit refuses this address. */
  connectAllowed(peer: PeerAddress, nowMs: number): boolean {
    return this.#connect === undefined || this.#connect(peer, nowMs);
  }

  /** UDP: true when the packet's source is banned (dropped unanswered, docs/policy.md "Abuse control"). */
  drops(source: PeerAddress, nowMs: number): boolean {
    return this.#drops !== undefined && this.#drops(source, nowMs);
  }

  /** UDP: one bad packet (bad connection id, junk) from `source`. */
  strike(source: PeerAddress, reason: 'bad_connection_id' | 'malformed', nowMs: number): void {
    this.#strike?.(source, reason, nowMs);
  }

  /**
   * The peers for one announce, after every step let it through; a refusal
   * is a thrown coded error (describeRefusal). A Promise only when a step or
   * the store must wait; its rejection is then the refusal.
   */
  announce(ctx: AnnounceContext): TrackerAnswer | Promise<TrackerAnswer> {
    const fast = this.#fast;
    return fast === undefined ? this.#announceLater(ctx) : this.#announceNow(ctx, fast);
  }

  /**
   * Every announce step, and no store: for a message that must pass the
   * chain but joins no swarm (a WebRTC answer relayed to its offerer,
   * docs/webtorrent.md). Returns the decoded request; a refusal throws (or
   * rejects when a step waits).
   */
  authorize(ctx: AnnounceContext): AnnounceRequest | Promise<AnnounceRequest> {
    if (this.#syncSteps) {
      const request = this.#decoded(ctx);
      const checks = this.#checks;
      for (let i = 0; i < checks.length; i++) checks[i]!(ctx, request);
      return request;
    }
    return this.#authorizeLater(ctx);
  }

  async #authorizeLater(ctx: AnnounceContext): Promise<AnnounceRequest> {
    const request = this.#decoded(ctx);
    for (const step of this.#announceSteps) {
      if (step.announceAsync !== undefined) await step.announceAsync(ctx, request);
      else step.announce?.(ctx, request);
    }
    return request;
  }

  /** Counts per hash, in the order of ctx.infoHashes(), zeros where a step hides the torrent. */
  async scrape(ctx: ScrapeContext): Promise<ScrapeFile[]> {
    this.#admitted(ctx);
    const checks = this.#scrapeChecks;
    for (let i = 0; i < checks.length; i++) checks[i]!(ctx);
    const hashes = ctx.infoHashes();
    const swarm = this.#swarm;
    // Both hashes of a linked hybrid count one swarm once (docs/policy.md).
    const counts = await this.#storage.scrape(swarm === undefined ? hashes : hashes.map(swarm));
    return hashes.map((infoHash, i) => {
      const c = this.#hidden(infoHash) ? undefined : counts[i];
      const leechers = c?.leechers ?? 0;
      // BEP 21: downloaders are the leechers that are not partial seeds; left out when the store cannot tell.
      const partial = c === undefined ? 0 : c.partialSeeds;
      return {
        infoHash,
        complete: c?.seeders ?? 0,
        incomplete: leechers,
        downloaded: c?.downloaded ?? 0,
        ...(partial === undefined ? {} : { downloaders: leechers - partial }),
      };
    });
  }

  #announceNow(ctx: AnnounceContext, store: SyncAnnounce): TrackerAnswer {
    const request = this.#decoded(ctx);
    const checks = this.#checks;
    for (let i = 0; i < checks.length; i++) checks[i]!(ctx, request);
    const wanted = this.#wanted(ctx, request);
    // Before the store: the peer is kept for the interval it will be told (docs/load.md).
    const interval = this.#intervalNow();
    const second = this.#second(ctx, request, wanted);
    const result = store(this.#promised(wanted, interval));
    const answer =
      second === undefined
        ? result
        : joined(result, store(this.#promised(second, interval)), wanted.event === 'stopped');
    ctx.interval = interval;
    return answer;
  }

  async #announceLater(ctx: AnnounceContext): Promise<TrackerAnswer> {
    const request = await this.#authorizeLater(ctx);
    const peer = this.#wanted(ctx, request);
    const interval = this.#intervalNow();
    const wanted = this.#promised(peer, interval);
    const otherPeer = this.#second(ctx, request, peer);
    const second = otherPeer === undefined ? undefined : this.#promised(otherPeer, interval);
    const sync = this.#storeSync;
    if (sync !== undefined) {
      const result = sync(wanted);
      const answer =
        second === undefined ? result : joined(result, sync(second), wanted.event === 'stopped');
      ctx.interval = interval;
      return answer;
    }
    const shed = this.#load?.shed(wanted, this.#waiting);
    if (shed !== undefined) {
      ctx.interval = shed;
      ctx.shed = true;
      return wanted.withPeerIds ? { ...SHED, peerIds: [] } : SHED;
    }
    this.#waiting++;
    let answer: TrackerAnswer;
    try {
      if (second === undefined) answer = await this.#storage.announce(wanted);
      else {
        // Sent together: storage-api's client puts both in one batch, Redis and
        // PostgreSQL get them back to back on one connection (one round trip of waiting).
        const both = await Promise.all([
          this.#storage.announce(wanted),
          this.#storage.announce(second),
        ]);
        answer = joined(both[0], both[1], wanted.event === 'stopped');
      }
    } finally {
      this.#waiting--;
    }
    ctx.interval = interval;
    return answer;
  }

  /**
   * BEP 7: the same announce at the peer's address of the other family, or
   * undefined. Asked before anything is written, so a refused address
   * leaves the swarm as it was (docs/decisions.md "BEP 7 addresses").
   */
  #second(
    ctx: AnnounceContext,
    request: AnnounceRequest,
    wanted: PeerAnnounce,
  ): PeerAnnounce | undefined {
    const other = ctx.alsoAt?.(request, { family: wanted.family, bytes: wanted.address });
    if (other === undefined) return undefined;
    return {
      ...wanted,
      family: other.family,
      address: other.bytes,
      port: other.port ?? wanted.port,
      // One download per client: the entry of its own family counts `completed`.
      event: wanted.event === 'completed' ? 'none' : wanted.event,
    };
  }

  /** docs/load.md "Peer expiry follows the promise". */
  #promised(wanted: PeerAnnounce, interval: number): PeerAnnounce {
    const load = this.#load;
    if (load !== undefined) wanted.lifetimeSeconds = load.lifetimeFor(interval);
    return wanted;
  }

  #admitted(ctx: RequestContext): void {
    const admit = this.#admit;
    for (let i = 0; i < admit.length; i++) admit[i]!(ctx);
  }

  #decoded(ctx: AnnounceContext): AnnounceRequest {
    this.#admitted(ctx);
    return ctx.request();
  }

  #wanted(ctx: AnnounceContext, request: AnnounceRequest): PeerAnnounce {
    const wanted = toPeerAnnounce(request, ctx.peer(request), this.#policy);
    const swarm = this.#swarm;
    if (swarm !== undefined) wanted.infoHash = swarm(wanted.infoHash);
    return wanted;
  }

  #intervalNow(): number {
    const interval = this.#interval;
    const seconds = this.#load?.intervalSeconds ?? this.#intervalSeconds;
    return interval === undefined ? seconds : interval(seconds);
  }

  #hidden(infoHash: Buffer): boolean {
    const hides = this.#hides;
    for (let i = 0; i < hides.length; i++) if (hides[i]!(infoHash)) return true;
    return false;
  }
}

/** The tracker's rules for turning a decoded announce into a store operation (docs/decisions.md "Tracker semantics"). */
export function toPeerAnnounce(
  request: AnnounceRequest,
  peer: PeerAddress,
  policy: AnnouncePolicy,
): PeerAnnounce {
  // A peer on port 0 cannot be dialled; only its departure is worth recording.
  if (request.port === 0 && request.event !== 'stopped')
    throw new GatewayError('GATEWAY_ERR_BAD_PORT');
  const wanted = request.numWant ?? policy.numWantDefault;
  const seeder = isSeeder(request);
  const keyHash =
    policy.movePeersByKey === false ? undefined : peerKeyHash(request.peerId, request.key);
  return {
    infoHash: request.infoHash,
    peerId: request.peerId,
    family: peer.family,
    address: peer.bytes,
    port: request.port,
    seeder,
    partialSeed: isPartialSeed(request),
    event: request.event,
    numWant:
      wanted < 0 ? policy.numWantDefault : wanted > policy.numWantMax ? policy.numWantMax : wanted,
    withPeerIds: !request.compact && !request.noPeerId,
    ...(keyHash === undefined ? {} : { keyHash }),
  };
}

function isSeeder(request: AnnounceRequest): boolean {
  return request.left === 0n || request.event === 'completed';
}

/**
 * BEP 21: `event=paused` from a peer that is not complete. A complete peer
 * that pauses is a seeder still (docs/decisions.md "Client features beyond BEP 3").
 */
export function isPartialSeed(request: AnnounceRequest): boolean {
  return request.paused === true && !isSeeder(request);
}

/**
 * One answer from the writes of both families. Each store answer is the
 * swarm after its own write, and the two may run in either order (two
 * connections of a pool): the counts taken are those that saw both writes,
 * the larger for an announce and the smaller for `stopped`, which removes.
 */
function joined(own: AnnounceResult, other: AnnounceResult, stopped: boolean): TrackerAnswer {
  const pick = stopped ? Math.min : Math.max;
  return {
    seeders: pick(own.seeders, other.seeders),
    leechers: pick(own.leechers, other.leechers),
    downloaded: Math.max(own.downloaded, other.downloaded),
    peers: own.peers,
    peerIds: own.peerIds,
    other: { peers: other.peers, peerIds: other.peerIds },
  };
}

function present<T>(items: ReadonlyArray<T | undefined>): T[] {
  return items.filter((item): item is T => item !== undefined);
}
