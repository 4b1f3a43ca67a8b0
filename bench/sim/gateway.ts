// The gateway's answers under each policy the simulation compares
// (RELIABILITY.md "Simulation"): what a failure says, the load-adaptive
// interval and shedding by class, modelled on the rule of docs/load.md with
// its config names.
import type { Answer } from './clients.ts';
import type { Rng } from './events.ts';

export type PolicyName = 'today' | 'failure-interval' | 'adaptive' | 'adaptive-shed';
export const POLICIES: readonly PolicyName[] = [
  'today',
  'failure-interval',
  'adaptive',
  'adaptive-shed',
];

/** Shedding classes (docs/load.md "Shedding"): seeder updates go first, events last. */
export type AnnounceKind = 'event' | 'leecher' | 'seeder';

export interface GatewayOptions {
  readonly ANNOUNCE_INTERVAL_SECONDS: number;
  readonly MIN_INTERVAL_SECONDS: number;
  readonly ANNOUNCE_INTERVAL_JITTER_SECONDS: number;
  readonly ANNOUNCE_INTERVAL_MAX_SECONDS: number;
  readonly PEER_LIFETIME_SECONDS: number;
  /** storage-api's clamp of a promised lifetime. */
  readonly PEER_LIFETIME_MAX_SECONDS: number;
  /** `interval` and `min interval` of a "retry later" failure under every policy but today's. */
  readonly RETRY_LATER_INTERVAL_SECONDS: number;
  readonly LOAD_SAMPLE_MS: number;
  readonly LOAD_HIGH: number;
  readonly LOAD_LOW: number;
  readonly LOAD_RAISE_AFTER_MS: number;
  readonly LOAD_RAISE_FACTOR: number;
  readonly LOAD_LOWER_AFTER_MS: number;
  readonly LOAD_LOWER_FACTOR: number;
  /** Announces waiting on the store at which the gateway-queue ratio is 1. */
  readonly LOAD_QUEUE_TARGET: number;
  /** storage-api: batch latency at which its latency ratio is 1. */
  readonly LOAD_BATCH_TARGET_MS: number;
  /** storage-api: store operations in flight at which its queue ratio is 1. */
  readonly LOAD_QUEUE_TARGET_OPS: number;
  readonly SHED_SEEDER_UPDATES_AT: number;
  readonly SHED_LEECHER_UPDATES_AT: number;
  readonly SHED_EVENTS_AT: number;
  readonly SHED_INTERVAL_MIN_SECONDS: number;
}

/** The controller of docs/load.md "The controller (the rule, exactly)". */
export class IntervalController {
  readonly #o: GatewayOptions;
  #interval: number;
  #storageSum = 0;
  #storageCount = 0;
  #highSince: number | undefined;
  #lowSince: number | undefined;
  #load = 0;

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.#interval = options.ANNOUNCE_INTERVAL_SECONDS;
  }

  /** `I`, the current interval before jitter. */
  get interval(): number {
    return this.#interval;
  }

  get load(): number {
    return this.#load;
  }

  /** One batch answer's `x-shoal-load` report: its store latency and the ops in flight when it started. */
  observeBatch(latencySeconds: number, storeOpsInFlight: number): void {
    const o = this.#o;
    this.#storageSum += Math.max(
      (latencySeconds * 1000) / o.LOAD_BATCH_TARGET_MS,
      storeOpsInFlight / o.LOAD_QUEUE_TARGET_OPS,
    );
    this.#storageCount++;
  }

  /** One sample at time `now` (seconds); `waiting` is the gateway's announces waiting on the store. */
  sample(now: number, waiting: number, breakerOpen: boolean): void {
    const o = this.#o;
    const storage = this.#storageCount === 0 ? 0 : this.#storageSum / this.#storageCount;
    this.#storageSum = 0;
    this.#storageCount = 0;
    const load = Math.max(waiting / o.LOAD_QUEUE_TARGET, breakerOpen ? 1 : 0, storage);
    this.#load = load;
    const t = now * 1000;
    if (load >= o.LOAD_HIGH) {
      this.#lowSince = undefined;
      this.#highSince ??= t;
      if (t - this.#highSince >= o.LOAD_RAISE_AFTER_MS) {
        this.#interval = Math.min(
          o.ANNOUNCE_INTERVAL_MAX_SECONDS,
          Math.round(this.#interval * o.LOAD_RAISE_FACTOR),
        );
        this.#highSince = t;
      }
    } else if (load <= o.LOAD_LOW) {
      this.#highSince = undefined;
      this.#lowSince ??= t;
      if (t - this.#lowSince >= o.LOAD_LOWER_AFTER_MS) {
        this.#interval = Math.max(
          o.ANNOUNCE_INTERVAL_SECONDS,
          Math.round(this.#interval / o.LOAD_LOWER_FACTOR),
        );
        this.#lowSince = t;
      }
    } else {
      this.#highSince = undefined;
      this.#lowSince = undefined;
    }
  }
}

export class GatewayPolicy {
  readonly name: PolicyName;
  readonly #o: GatewayOptions;
  readonly controller: IntervalController;

  constructor(name: PolicyName, options: GatewayOptions) {
    this.name = name;
    this.#o = options;
    this.controller = new IntervalController(options);
  }

  get adaptive(): boolean {
    return this.name === 'adaptive' || this.name === 'adaptive-shed';
  }

  /** The interval normal answers promise now, before jitter. */
  get baseInterval(): number {
    return this.adaptive ? this.controller.interval : this.#o.ANNOUNCE_INTERVAL_SECONDS;
  }

  /** A normal answer's `interval`: docs/load.md "The interval a client is told". */
  promisedInterval(rng: Rng): number {
    const o = this.#o;
    const i = this.baseInterval;
    const spread = Math.max(
      o.ANNOUNCE_INTERVAL_JITTER_SECONDS,
      Math.floor((i - o.ANNOUNCE_INTERVAL_SECONDS) / 10),
    );
    return Math.min(o.ANNOUNCE_INTERVAL_MAX_SECONDS, i + Math.floor(rng.uniform(0, spread + 1)));
  }

  /** How long the store keeps a peer told `interval`: docs/load.md "Peer expiry follows the promise". */
  lifetimeFor(interval: number): number {
    const o = this.#o;
    if (!this.adaptive) return o.PEER_LIFETIME_SECONDS;
    const grace = o.PEER_LIFETIME_SECONDS - o.ANNOUNCE_INTERVAL_SECONDS;
    return Math.min(
      o.PEER_LIFETIME_MAX_SECONDS,
      Math.max(o.PEER_LIFETIME_SECONDS, interval + grace),
    );
  }

  okAnswer(interval: number): Answer {
    return { kind: 'ok', interval, minInterval: this.#o.MIN_INTERVAL_SECONDS };
  }

  /** A shed announce's answer: a success with no peers, its interval spread up to the current one. */
  shedAnswer(rng: Rng): Answer {
    const low = this.#o.SHED_INTERVAL_MIN_SECONDS;
    const interval = Math.floor(rng.uniform(low, Math.max(this.controller.interval, low) + 1));
    return { kind: 'shed', interval, minInterval: this.#o.MIN_INTERVAL_SECONDS };
  }

  /** A "retry later": today's carries only BEP 31 `retry in`, which no major client reads. */
  retryLater(): Answer {
    if (this.name === 'today') return { kind: 'failure' };
    const interval = this.#o.RETRY_LATER_INTERVAL_SECONDS;
    return { kind: 'failure', interval, minInterval: interval };
  }

  /** Whether an announce of this class is shed, with `waiting` announces already waiting on the store. */
  shouldShed(kind: AnnounceKind, waiting: number): boolean {
    if (this.name !== 'adaptive-shed') return false;
    const o = this.#o;
    const at =
      kind === 'seeder'
        ? o.SHED_SEEDER_UPDATES_AT
        : kind === 'leecher'
          ? o.SHED_LEECHER_UPDATES_AT
          : o.SHED_EVENTS_AT;
    return at > 0 && waiting >= at;
  }
}
