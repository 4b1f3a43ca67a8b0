// The storage contract every driver (memory, redis, postgres) implements and
// the conformance suite checks. Shaped so that one announce is one round trip
// to a backend: the driver receives everything it needs to write the peer,
// prune, count and sample in a single operation (docs/decisions.md "Storage").
// PeerAnnounce lives in @shoal/protocol: the storage-api batch body
// (storage-rpc.ts there) carries exactly its fields.
import type { AnnounceEvent, Family, PeerAnnounce } from '@shoal/protocol';

export type { AnnounceEvent, Family, PeerAnnounce };

export interface AnnounceResult {
  /** Swarm counts after this announce, both families, announcer included. */
  seeders: number;
  /** Every peer that is not a seeder, partial seeds included (BEP 21 `incomplete`). */
  leechers: number;
  downloaded: number;
  /** BEP 21 partial seeds among the leechers; undefined from a store that cannot tell (a custom query without the column). */
  partialSeeds?: number;
  /**
   * Compact peers of the announcer's family: 6 bytes each (IPv4 + port, BEP 23)
   * or 18 bytes each (IPv6 + port, BEP 7). Never contains the announcer.
   */
  peers: Buffer;
  /** Parallel to `peers` when `withPeerIds` was asked; otherwise undefined. */
  peerIds: Buffer[] | undefined;
  /**
   * true when this announce added one to the swarm's download count (a
   * `completed` from a peer not already a live seeder), false when it did
   * not. Lets a store that keeps downloads in another backend count exactly
   * once per peer (docs/storage-api.md). Undefined from a driver or a
   * custom query that cannot tell.
   */
  downloadCounted?: boolean;
  /**
   * Names the completion this announce counted, or the one a repeated
   * `completed` from the same live seeder already counted (then
   * `downloadCounted` is false). A store keeping downloads in another backend
   * adds each receipt there once (DownloadReceipts), so a retry after a lost
   * write counts exactly once (docs/storage-api.md "Consistency"). Only from
   * drivers that keep receipts (redis).
   */
  downloadReceipt?: string;
}

export interface SwarmCounts {
  seeders: number;
  /** Partial seeds included, as in AnnounceResult. */
  leechers: number;
  downloaded: number;
  /** BEP 21 partial seeds among the leechers; undefined from a store that cannot tell. */
  partialSeeds?: number;
}

export interface GcResult {
  peersRemoved: number;
  swarmsRemoved: number;
}

export interface FamilyCounts {
  v4: number;
  v6: number;
}

export interface StoreStats {
  /** Swarms with at least one live peer. */
  torrents: number;
  seeders: FamilyCounts;
  leechers: FamilyCounts;
}

export interface TopSwarm {
  /** 20 bytes. */
  infoHash: Buffer;
  /** Live peers, both families. */
  seeders: number;
  leechers: number;
}

export interface PeerStore {
  /** 'memory' | 'redis' | 'postgres' ... (metrics label). */
  readonly driver: string;
  announce(a: PeerAnnounce): Promise<AnnounceResult>;
  /** One entry per requested hash, in order; unknown hashes are zeros. */
  scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]>;
  /** Deletes peers past peer_lifetime and empty swarms. Never needed for correctness. */
  collectGarbage(): Promise<GcResult>;
  stats(): Promise<StoreStats>;
  /** Resolves when the backend is reachable; rejects with STORE_ERR_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Durable key-value data: approval lists, passkeys (context/key -> value). */
export interface DataStore {
  get(context: string, key: string): Promise<string | undefined>;
  put(context: string, key: string, value: string): Promise<void>;
  /** true when the key existed. */
  delete(context: string, key: string): Promise<boolean>;
  /** Every entry of a context, ordered by key. */
  list(context: string): Promise<Array<[key: string, value: string]>>;
  close(): Promise<void>;
}

/**
 * Durable download counters kept apart from the peers (storage-api's split
 * backends). Drivers that implement it keep the counters in the
 * same place their own announces count into.
 */
export interface DownloadCounter {
  /** Adds each entry's count to its swarm's download counter, in one round trip where the backend allows. */
  addDownloads(
    increments: ReadonlyArray<readonly [infoHash: Buffer, count: number]>,
  ): Promise<void>;
  /** One count per requested hash, in order; unknown hashes are 0. */
  downloads(infoHashes: readonly Buffer[]): Promise<number[]>;
}

/** One counted completion, named by the peer store's receipt. */
export interface DownloadReceipt {
  /** 20 bytes. */
  infoHash: Buffer;
  receipt: string;
}

/**
 * Download counters fed by receipts: each receipt adds one download the
 * first time it arrives and nothing after, however often it is re-sent.
 */
export interface DownloadReceipts {
  addDownloadReceipts(receipts: readonly DownloadReceipt[]): Promise<void>;
  /** Deletes receipts older than any retry could re-send; returns how many. */
  expireDownloadReceipts(): Promise<number>;
}

export interface StoreOptions {
  /** A peer not heard from for this long is gone (docs/decisions.md "Tracker semantics"; default 1860 = 31 min). */
  peerLifetimeSeconds: number;
  /** Milliseconds since the epoch; injectable so tests can move time. Defaults to Date.now. */
  clock?: () => number;
}
