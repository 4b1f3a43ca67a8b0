// What a store can do beyond PeerStore, named once (docs/storage.md
// "Capabilities"). A caller asks with the guard, never by the driver's name,
// so a new driver (or the gateway's storage-api client) gains a feature by
// implementing the interface, and every caller sees it.
import type {
  AnnounceResult,
  DataStore,
  DownloadCounter,
  DownloadReceipts,
  PeerAnnounce,
  PeerStore,
  SwarmCounts,
  TopSwarm,
} from './types.ts';
import type { StoreConfig } from './open/config.ts';

/** Answers an announce without a Promise (an in-process store on the hot path). Throws StoreError. */
export interface SyncAnnounce {
  announceSync(a: PeerAnnounce): AnnounceResult;
}

/** Answers a scrape without a Promise. Throws StoreError. */
export interface SyncScrape {
  scrapeSync(infoHashes: readonly Buffer[]): SwarmCounts[];
}

/**
 * The `limit` swarms with the most live peers (both families), most first;
 * ties in any order. An admin view (`GET /v1/admin/top`), never on the
 * announce path, so a driver may walk its whole keyspace.
 */
export interface TopSwarms {
  topSwarms(limit: number): Promise<TopSwarm[]>;
}

/**
 * What an in-process store offers: the memory store, and the shared-memory
 * store, which is the same for the worker threads of one process.
 */
export interface InProcessStore
  extends
    PeerStore,
    DataStore,
    DownloadCounter,
    RateCounters,
    SyncAnnounce,
    SyncScrape,
    TopSwarms {}

/** Cluster-wide counts of one rate-limit window: `current` and `previous` per key, in order. */
export interface RateCounts {
  current: number[];
  previous: number[];
}

/**
 * Counters of the rate limit all gateways share (docs/policy.md "Shared rate
 * limits"): windows of `windowMs`, numbered `floor(ms / windowMs)`. Adds
 * `deltas[i]` to `keys[i]`'s count of `window` and answers every key's count
 * in that window and the one before, after the add, in one round trip where
 * the backend allows. A window's counts vanish by themselves two windows later.
 */
export interface RateCounters {
  addRateCounts(
    window: number,
    windowMs: number,
    keys: readonly string[],
    deltas: readonly number[],
  ): Promise<RateCounts>;
}

/** Says whether the backend answers: resolves, or rejects with STORE_ERR_UNAVAILABLE. */
export interface Pingable {
  ping(): Promise<void>;
}

/** Durable KV data whose backend can be pinged (every driver's store). */
export interface PingableDataStore extends DataStore, Pingable {}

/** What a reconfigure changed. */
export interface ReconfigureResult {
  /** Backends (ring shards) connected anew, closed, and kept as they were. */
  added: string[];
  removed: string[];
  kept: string[];
  /** Download counters moved to the swarm's new shard. */
  downloadCountersMoved: number;
  /** Shards whose counters could not be read (down); their counters stay where they are. */
  unreachable: string[];
}

/**
 * Applies new settings without a restart (a config reload). Rejects with
 * STORE_ERR_CONFIG, keeping the running settings, when `next` is something
 * this store cannot become (another driver).
 */
export interface Reconfigurable {
  reconfigure(next: StoreConfig): Promise<ReconfigureResult>;
}

/**
 * A client of a storage service (the gateway's storage-api client): its KV
 * data is read through the service, not from the store (docs/storage-api.md).
 */
export interface ServiceClient {
  readonly service: { readonly url: string; readonly token: string; readonly timeoutMs: number };
}

type Probe = Record<string, unknown>;
const has = (store: object, ...methods: string[]): boolean =>
  methods.every((m) => typeof (store as Probe)[m] === 'function');

export function hasSyncAnnounce<S extends object>(store: S): store is S & SyncAnnounce {
  return has(store, 'announceSync');
}

export function hasSyncScrape<S extends object>(store: S): store is S & SyncScrape {
  return has(store, 'scrapeSync');
}

export function hasTopSwarms<S extends object>(store: S): store is S & TopSwarms {
  return has(store, 'topSwarms');
}

export function hasRateCounters<S extends object>(store: S): store is S & RateCounters {
  return has(store, 'addRateCounts');
}

export function isPingable<S extends object>(store: S): store is S & Pingable {
  return has(store, 'ping');
}

export function isDataStore<S extends object>(store: S): store is S & DataStore {
  return has(store, 'get', 'put', 'delete', 'list');
}

export function isReconfigurable<S extends object>(store: S): store is S & Reconfigurable {
  return has(store, 'reconfigure');
}

export function isDownloadCounter<S extends object>(store: S): store is S & DownloadCounter {
  return has(store, 'addDownloads', 'downloads');
}

export function takesDownloadReceipts<S extends object>(store: S): store is S & DownloadReceipts {
  return has(store, 'addDownloadReceipts', 'expireDownloadReceipts');
}

export function isServiceClient<S extends object>(store: S): store is S & ServiceClient {
  const service = (store as Probe).service;
  return typeof service === 'object' && service !== null;
}
