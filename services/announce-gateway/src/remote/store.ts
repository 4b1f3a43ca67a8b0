// STORAGE_DRIVER=remote: the gateway's PeerStore backed by storage-api over
// keep-alive HTTP (docs/decisions.md "Services"). Announces and
// scrapes go through the batcher and the circuit breaker; stats and ping are
// rare and go straight to the transport.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  STORAGE_RPC_MAX_SCRAPE_HASHES,
  checkBatchOp,
  isProtocolError,
  type RpcOp,
  type RpcResult,
  type RpcWsOp,
} from '@shoal/protocol';
import {
  StoreError,
  validateFullScrapeLimit,
  validateRateCounts,
  type AnnounceResult,
  type GcResult,
  type PeerAnnounce,
  type PeerStore,
  type FullScrape,
  type FullScrapeResult,
  type RateCounters,
  type RateCounts,
  type ServiceClient,
  type StoreStats,
  type SwarmCounts,
} from '@shoal/storage';
import { Batcher } from './batcher.ts';
import { CIRCUIT_STATE_VALUE, CircuitBreaker, type CircuitState } from './breaker.ts';
import type { RemoteStoreConfig } from './config.ts';
import { StorageLoadReports } from './load-reports.ts';
import { createRemoteClientMetrics } from './metrics.ts';
import { RpcTransport, isOutage, isStoreErrorCode } from './transport.ts';

export interface RemoteStoreDeps {
  logger: Logger;
  registry: Registry;
  /** Milliseconds since the epoch, for the breaker's open period; tests move it. */
  clock?: () => number;
}

/**
 * A ServiceClient: the gateway reads its policy from storage-api too. Not a
 * DataStore, SyncAnnounce or TopSwarms: storage-api serves those itself.
 */
export interface RemoteStore extends PeerStore, ServiceClient, FullScrape, RateCounters {
  readonly driver: 'remote';
  /** The breaker's state now (also the shoal_storage_client_circuit_state gauge). */
  readonly circuitState: CircuitState;
  /** storage-api's load reports since the last sample (docs/load.md). */
  readonly storageLoad: StorageLoadReports;
  /**
   * One WebSocket swarm op (docs/webtorrent.md "The split topology"),
   * batched and behind the breaker like announces; a failed op throws its
   * StoreError.
   */
  ws(op: RpcWsOp): Promise<RpcResult & { ok: true }>;
}

export function isRemoteStore(store: PeerStore): store is RemoteStore {
  return store.driver === 'remote' && 'storageLoad' in store;
}

type RequiredRemoteConfig = RemoteStoreConfig & {
  readonly STORAGE_API_URL: string;
  readonly STORAGE_API_TOKEN: string;
};

const PING_HASH = Buffer.alloc(20);
/** A full scrape walks every swarm in storage-api's store: allow it more than one batch's REMOTE_TIMEOUT_MS. */
const FULL_SCRAPE_TIMEOUT_MIN_MS = 30_000;
const MAX_NUM_WANT = 0xffff;

export function createRemoteStore(config: RemoteStoreConfig, deps: RemoteStoreDeps): RemoteStore {
  if (config.STORAGE_API_URL === undefined || config.STORAGE_API_TOKEN === undefined)
    throw new StoreError('STORE_ERR_CONFIG', 'STORAGE_API_URL and STORAGE_API_TOKEN are required');
  const c = config as RequiredRemoteConfig;
  const log = deps.logger.child({ module: 'remote-storage' });
  const storageLoad = new StorageLoadReports(log);
  const transport = new RpcTransport({
    onLoad: (report) => storageLoad.add(report),
    url: c.STORAGE_API_URL,
    token: c.STORAGE_API_TOKEN,
    connections: c.REMOTE_CONNECTIONS,
    timeoutMs: c.REMOTE_TIMEOUT_MS,
    logger: log,
  });
  const breaker = new CircuitBreaker({
    failures: c.REMOTE_BREAKER_FAILURES,
    failureRatio: c.REMOTE_BREAKER_FAILURE_RATIO,
    window: c.REMOTE_BREAKER_WINDOW,
    openMs: c.REMOTE_BREAKER_OPEN_MS,
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    onStateChange: (to, from) => {
      // A probe failing again re-opens it every REMOTE_BREAKER_OPEN_MS: only the first opening is news.
      if (to === 'open' && from === 'closed')
        log.warn(
          { openMs: c.REMOTE_BREAKER_OPEN_MS },
          'storage-api circuit open: announces answer "retry later" at once',
        );
      else if (to === 'closed') log.info({ from }, 'storage-api circuit closed');
      else log.debug({ from, to }, 'storage-api circuit state');
    },
  });
  const batcher: Batcher<RpcOp, RpcResult> = new Batcher<RpcOp, RpcResult>(transport, {
    batching: c.REMOTE_BATCHING,
    maxOps: c.REMOTE_BATCH_MAX_OPS,
    queueMax: c.REMOTE_QUEUE_MAX,
    timeoutMs: c.REMOTE_TIMEOUT_MS,
    maxInFlight: c.REMOTE_CONNECTIONS,
    breaker,
    resultOk: (r) => r.ok,
    isOutage,
    metrics: createRemoteClientMetrics(deps.registry, {
      circuitState: () => CIRCUIT_STATE_VALUE[breaker.state],
      queueDepth: () => batcher.depth,
    }),
  });

  async function scrapeChunk(infoHashes: Buffer[]): Promise<SwarmCounts[]> {
    const r = await batcher.submit(checked({ op: 'scrape', infoHashes }));
    if (!r.ok) throw resultError(r.code);
    if (r.op !== 'scrape') throw mismatch();
    return r.counts;
  }

  let closed: Promise<void> | undefined;

  return {
    driver: 'remote',
    service: { url: c.STORAGE_API_URL, token: c.STORAGE_API_TOKEN, timeoutMs: c.REMOTE_TIMEOUT_MS },
    get circuitState() {
      return breaker.state;
    },
    storageLoad,

    async announce(a: PeerAnnounce): Promise<AnnounceResult> {
      const r = await batcher.submit(
        checked({
          op: 'announce',
          infoHash: a.infoHash,
          peerId: a.peerId,
          family: a.family,
          address: a.address,
          port: a.port,
          seeder: a.seeder,
          ...(a.partialSeed === true ? { partialSeed: true } : {}),
          event: a.event,
          // An answer carries at most 65535 peers (u16 count); any store caps there too.
          numWant: a.numWant > MAX_NUM_WANT ? MAX_NUM_WANT : a.numWant,
          withPeerIds: a.withPeerIds,
          ...(a.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: a.lifetimeSeconds }),
          ...(a.keyHash === undefined ? {} : { keyHash: a.keyHash }),
        }),
      );
      if (!r.ok) throw resultError(r.code);
      if (r.op !== 'announce') throw mismatch();
      // The decoded result already has AnnounceResult's fields; no copy per announce.
      return r;
    },

    async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
      if (infoHashes.length === 0) return [];
      if (infoHashes.length <= STORAGE_RPC_MAX_SCRAPE_HASHES) return scrapeChunk([...infoHashes]);
      // One scrape op carries at most 255 hashes (u8 n); larger scrapes ride as several ops of one batch.
      const chunks: Array<Promise<SwarmCounts[]>> = [];
      for (let i = 0; i < infoHashes.length; i += STORAGE_RPC_MAX_SCRAPE_HASHES)
        chunks.push(scrapeChunk(infoHashes.slice(i, i + STORAGE_RPC_MAX_SCRAPE_HASHES)));
      return (await Promise.all(chunks)).flat();
    },

    async ws(op: RpcWsOp): Promise<RpcResult & { ok: true }> {
      const r = await batcher.submit(checked(op));
      if (!r.ok) throw resultError(r.code);
      if (r.op !== op.op) throw mismatch();
      return r;
    },

    /** Garbage collection is the gc-worker's job through storage-api, never a gateway's. */
    collectGarbage(): Promise<GcResult> {
      return Promise.resolve({ peersRemoved: 0, swarmsRemoved: 0 });
    },

    async stats(): Promise<StoreStats> {
      const body = await transport.stats(AbortSignal.timeout(c.REMOTE_TIMEOUT_MS));
      if (!isStoreStats(body))
        throw new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api /v1/stats is not StoreStats');
      return body;
    },

    /** docs/full-scrape.md: storage-api walks its store; rare (a gateway's cache refresh), so past the batcher. */
    async fullScrape(limit: number): Promise<FullScrapeResult> {
      validateFullScrapeLimit(limit);
      const timeoutMs = Math.max(c.REMOTE_TIMEOUT_MS, FULL_SCRAPE_TIMEOUT_MIN_MS);
      const body = await transport.fullScrape(limit, AbortSignal.timeout(timeoutMs));
      return {
        truncated: body.truncated,
        swarms: body.swarms.map(([hex, seeders, leechers, downloaded]) => ({
          infoHash: Buffer.from(hex, 'hex'),
          seeders,
          leechers,
          downloaded,
        })),
      };
    },

    /**
     * docs/policy.md "Shared rate limits": one call per sync period, past the
     * batcher and the breaker (a failed sync only leaves the gateway to its
     * own counts; it must not open the breaker for announces).
     */
    async addRateCounts(
      window: number,
      windowMs: number,
      keys: readonly string[],
      deltas: readonly number[],
    ): Promise<RateCounts> {
      // Bad input is the caller's STORE_ERR_BAD_INPUT, as with every driver, not a failed sync.
      validateRateCounts(window, windowMs, keys, deltas);
      return transport.rateLimits(
        { window, windowMs, keys: [...keys], deltas: [...deltas] },
        AbortSignal.timeout(c.REMOTE_TIMEOUT_MS),
      );
    },

    /**
     * A one-hash scrape sent past the batcher and the breaker: it proves the
     * token, the batch version and storage-api's backend at once, and still
     * reports the truth while the breaker refuses traffic.
     */
    async ping(): Promise<void> {
      const ops: RpcOp[] = [{ op: 'scrape', infoHashes: [PING_HASH] }];
      const [r] = await transport
        .send(ops, AbortSignal.timeout(c.REMOTE_TIMEOUT_MS))
        .catch((err: unknown) => {
          throw err instanceof StoreError
            ? err
            : new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api ping failed', { cause: err });
        });
      if (r?.ok !== true)
        throw resultError(r === undefined || r.ok ? 'STORE_ERR_UNAVAILABLE' : r.code);
    },

    close(): Promise<void> {
      closed ??= batcher.close().then(() => transport.close());
      return closed;
    },
  };
}

/**
 * Refuses, alone, an op the batch cannot carry (STORE_ERR_BAD_INPUT, as every
 * embedded driver does) before it is queued: it never fails its batch.
 */
function checked<T extends RpcOp>(op: T): T {
  try {
    checkBatchOp(op);
  } catch (err) {
    if (isProtocolError(err))
      throw new StoreError('STORE_ERR_BAD_INPUT', err.message, { cause: err });
    throw err;
  }
  return op;
}

function resultError(code: string): StoreError {
  return isStoreErrorCode(code)
    ? new StoreError(code, 'reported by storage-api')
    : new StoreError('STORE_ERR_UNAVAILABLE', `storage-api reported ${code}`);
}

function mismatch(): StoreError {
  return new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api answered another kind of result');
}

function isCounts(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const f = v as Record<string, unknown>;
  return typeof f.v4 === 'number' && typeof f.v6 === 'number';
}

function isStoreStats(v: unknown): v is StoreStats {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return typeof s.torrents === 'number' && isCounts(s.seeders) && isCounts(s.leechers);
}
