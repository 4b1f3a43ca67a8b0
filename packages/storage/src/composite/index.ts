// @shoal/storage/composite: peers in one backend, durable data in another
// (docs/decisions.md "Storage": peers in Redis Sentinel, downloads and KV in
// CockroachDB is the chart's default). storage-api opens the drivers its
// config names and serves from this object.
//
// Download counts when the backends differ (docs/storage-api.md
// "Consistency"): the peer backend decides, in the same round trip that
// writes the peer, whether a `completed` counts (once per peer) and says so
// in `downloadCounted`. A batch then adds the counted downloads to the data
// backend in one call and reads the counts of every swarm it touched in one
// more, so answers carry the durable count. One backend for both: its own
// counters are the durable ones and nothing extra runs.
//
// When the peer backend names each counted completion with a receipt (redis)
// and the data backend takes receipts (postgres), receipts are sent instead
// of counts: the peer backend hands a receipt out again when the client
// repeats `completed`, and the data backend counts each receipt once, so a
// crash between the two writes, or losing the counts waiting in memory
// through a data-backend outage, costs nothing once the client retries.
import {
  hasRateCounters,
  hasTopSwarms,
  isDownloadCounter,
  takesDownloadReceipts,
  type PingableDataStore,
} from '../capabilities.ts';
import { StoreError } from '../errors.ts';
import type {
  AnnounceResult,
  DataStore,
  DownloadCounter,
  DownloadReceipt,
  DownloadReceipts,
  GcResult,
  PeerAnnounce,
  PeerStore,
  StoreStats,
  SwarmCounts,
  TopSwarm,
} from '../types.ts';

export interface CompositeStoreParts {
  peers: PeerStore;
  /** Also a DownloadCounter (and DownloadReceipts) to keep durable counts there. */
  data: PingableDataStore;
  /** Metrics label of the data backend ('memory' | 'redis' | 'postgres'). */
  dataDriver: string;
  /** Told about download-counter writes and reads that failed (they are retried / fall back). */
  onError?: (err: unknown, what: 'add_downloads' | 'read_downloads' | 'expire_receipts') => void;
  /**
   * Keep download counts in the data backend. Default: when `peers` and
   * `data` are different objects. Pass false when they are two handles on one
   * backend, whose announces already count into the same counters.
   */
  downloadsApart?: boolean;
  /** Swarms whose counted downloads may wait for the data backend; past it the oldest are dropped. Default 100000. */
  maxPendingSwarms?: number;
}

export type BatchOp =
  (PeerAnnounce & { op: 'announce' }) | { op: 'scrape'; infoHashes: readonly Buffer[] };

export type BatchOutcome =
  | { ok: true; op: 'announce'; result: AnnounceResult }
  | { ok: true; op: 'scrape'; counts: SwarmCounts[] }
  | { ok: false; error: unknown };

export interface BatchOptions {
  /** Called once per op when its peer-backend call settles (metrics). */
  onOp?: (op: 'announce' | 'scrape', startMs: number, error: unknown) => void;
}

export interface BackendHealth {
  peers: { driver: string; ok: boolean; code?: string };
  data: { driver: string; ok: boolean; code?: string };
}

export interface CompositeStore extends PeerStore, DataStore {
  readonly dataDriver: string;
  /** true when download counts live in the data backend (the backends differ). */
  readonly downloadsApart: boolean;
  /** Runs every op at once; one failing op fails alone. */
  batch(ops: readonly BatchOp[], options?: BatchOptions): Promise<BatchOutcome[]>;
  /** Durable download counts, one per hash, in order. */
  downloads(infoHashes: readonly Buffer[]): Promise<number[]>;
  /** Pings both backends (once when they are the same object); never rejects. */
  health(): Promise<BackendHealth>;
  /** Counted downloads not yet written to the data backend (its outage). */
  pendingDownloads(): number;
}

function codeOf(err: unknown): string {
  return err instanceof StoreError ? err.code : 'STORE_ERR_UNAVAILABLE';
}

const NO_OP_CALLBACK = (): void => undefined;

export function createCompositeStore(parts: CompositeStoreParts): CompositeStore {
  const { peers, data, dataDriver } = parts;
  const onError = parts.onError ?? NO_OP_CALLBACK;
  const maxPending = parts.maxPendingSwarms ?? 100_000;
  // One object serving both roles (all in one backend) is pinged and closed once.
  const same = (peers as unknown) === (data as unknown);
  const counter: DownloadCounter | undefined =
    (parts.downloadsApart ?? !same) && isDownloadCounter(data) ? data : undefined;
  const receipts: DownloadReceipts | undefined =
    counter !== undefined && takesDownloadReceipts(data) ? data : undefined;
  /** hex info hash -> downloads counted by the peer backend, not yet in the data backend. */
  const pending = new Map<string, number>();
  /** `<hex info hash> <receipt>` -> receipts not yet in the data backend (when receipts are used). */
  const pendingReceipts = new Map<string, DownloadReceipt>();
  let closed: Promise<void> | undefined;

  const probe = (p: () => Promise<void>): Promise<{ ok: boolean; code?: string }> =>
    p().then(
      () => ({ ok: true }),
      (err: unknown) => ({ ok: false, code: codeOf(err) }),
    );

  async function flushCounted(
    outcomes: readonly BatchOutcome[],
    ops: readonly BatchOp[],
  ): Promise<void> {
    if (counter === undefined) return;
    // This batch's counted downloads (or receipts) plus any an earlier
    // failure left behind. Taken out of `pending` before the write, so a
    // concurrent batch never sends the same increments twice.
    const sending = new Map(pending);
    pending.clear();
    const sendingReceipts = new Map(pendingReceipts);
    pendingReceipts.clear();
    outcomes.forEach((o, i) => {
      const op = ops[i];
      if (!o.ok || o.op !== 'announce' || op?.op !== 'announce') return;
      const key = op.infoHash.toString('hex');
      const receipt = o.result.downloadReceipt;
      if (receipts !== undefined && receipt !== undefined) {
        sendingReceipts.set(`${key} ${receipt}`, { infoHash: op.infoHash, receipt });
      } else if (o.result.downloadCounted === true) {
        sending.set(key, (sending.get(key) ?? 0) + 1);
      }
    });
    await Promise.all([
      sending.size === 0
        ? undefined
        : counter
            .addDownloads([...sending].map(([k, n]) => [Buffer.from(k, 'hex'), n] as const))
            .catch((err: unknown) => {
              // Kept and sent with a later batch: a data-backend outage delays counts.
              for (const [k, n] of sending) pending.set(k, (pending.get(k) ?? 0) + n);
              while (pending.size > maxPending)
                pending.delete(pending.keys().next().value as string);
              onError(err, 'add_downloads');
            }),
      receipts === undefined || sendingReceipts.size === 0
        ? undefined
        : receipts.addDownloadReceipts([...sendingReceipts.values()]).catch((err: unknown) => {
            // Kept for a later batch. Lost only with this process, and then
            // the peer backend hands each receipt out again on the client's
            // retry of `completed`.
            for (const [k, r] of sendingReceipts) pendingReceipts.set(k, r);
            while (pendingReceipts.size > maxPending)
              pendingReceipts.delete(pendingReceipts.keys().next().value as string);
            onError(err, 'add_downloads');
          }),
    ]);
  }

  /** Downloads waiting for the data backend, per hex info hash. */
  function waiting(): Map<string, number> {
    const out = new Map(pending);
    for (const r of pendingReceipts.values()) {
      const k = r.infoHash.toString('hex');
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  }

  async function overlayDurable(outcomes: BatchOutcome[], ops: readonly BatchOp[]): Promise<void> {
    if (counter === undefined) return;
    const index = new Map<string, number>();
    const hashes: Buffer[] = [];
    const want = (h: Buffer): void => {
      const k = h.toString('hex');
      if (!index.has(k)) {
        index.set(k, hashes.length);
        hashes.push(h);
      }
    };
    outcomes.forEach((o, i) => {
      const op = ops[i];
      if (!o.ok || op === undefined) return;
      if (op.op === 'announce') want(op.infoHash);
      else op.infoHashes.forEach(want);
    });
    if (hashes.length === 0) return;
    let counts: number[];
    try {
      counts = await counter.downloads(hashes);
    } catch (err) {
      // The peer backend's own counters answer meanwhile (docs/storage-api.md).
      onError(err, 'read_downloads');
      return;
    }
    const held = pendingReceipts.size === 0 ? pending : waiting();
    const durable = (h: Buffer): number => {
      const k = h.toString('hex');
      return (counts[index.get(k) ?? -1] ?? 0) + (held.get(k) ?? 0);
    };
    outcomes.forEach((o, i) => {
      const op = ops[i];
      if (!o.ok || op === undefined) return;
      if (o.op === 'announce' && op.op === 'announce') o.result.downloaded = durable(op.infoHash);
      else if (o.op === 'scrape' && op.op === 'scrape') {
        op.infoHashes.forEach((h, j) => {
          const c = o.counts[j];
          if (c !== undefined) c.downloaded = durable(h);
        });
      }
    });
  }

  async function batch(
    ops: readonly BatchOp[],
    options: BatchOptions = {},
  ): Promise<BatchOutcome[]> {
    const onOp = options.onOp ?? NO_OP_CALLBACK;
    const outcomes = await Promise.all(
      ops.map((op): Promise<BatchOutcome> => {
        const start = performance.now();
        if (op.op === 'announce') {
          return peers.announce(op).then(
            (result): BatchOutcome => {
              onOp('announce', start, undefined);
              return { ok: true, op: 'announce', result };
            },
            (error: unknown): BatchOutcome => {
              onOp('announce', start, error);
              return { ok: false, error };
            },
          );
        }
        return peers.scrape(op.infoHashes).then(
          (counts): BatchOutcome => {
            onOp('scrape', start, undefined);
            return { ok: true, op: 'scrape', counts };
          },
          (error: unknown): BatchOutcome => {
            onOp('scrape', start, error);
            return { ok: false, error };
          },
        );
      }),
    );
    await flushCounted(outcomes, ops);
    await overlayDurable(outcomes, ops);
    return outcomes;
  }

  return {
    driver: peers.driver,
    dataDriver,
    downloadsApart: counter !== undefined,
    batch,
    async announce(a: PeerAnnounce): Promise<AnnounceResult> {
      const [o] = await batch([{ ...a, op: 'announce' }]);
      if (o === undefined || !o.ok) throw o?.error;
      if (o.op !== 'announce') throw new StoreError('STORE_ERR_UNAVAILABLE', 'result kind');
      return o.result;
    },
    async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
      const [o] = await batch([{ op: 'scrape', infoHashes }]);
      if (o === undefined || !o.ok) throw o?.error;
      if (o.op !== 'scrape') throw new StoreError('STORE_ERR_UNAVAILABLE', 'result kind');
      return o.counts;
    },
    async downloads(infoHashes: readonly Buffer[]): Promise<number[]> {
      if (counter === undefined) return (await peers.scrape(infoHashes)).map((c) => c.downloaded);
      const counts = await counter.downloads(infoHashes);
      const held = waiting();
      return counts.map((n, i) => n + (held.get(infoHashes[i]?.toString('hex') ?? '') ?? 0));
    },
    async collectGarbage(): Promise<GcResult> {
      const result = await peers.collectGarbage();
      if (receipts !== undefined) {
        // Never fails the peers' GC: old receipts only take room.
        await receipts.expireDownloadReceipts().catch((err: unknown) => {
          onError(err, 'expire_receipts');
        });
      }
      return result;
    },
    stats: (): Promise<StoreStats> => peers.stats(),
    // Present when the peer backend has it.
    ...(hasTopSwarms(peers)
      ? { topSwarms: (limit: number): Promise<TopSwarm[]> => peers.topSwarms(limit) }
      : {}),
    // Shared rate limits (docs/policy.md "Shared rate limits"): in the peer
    // backend, which every storage-api replica shares and which is built for
    // churn (Redis before CockroachDB), else in the data backend.
    ...(hasRateCounters(peers)
      ? { addRateCounts: peers.addRateCounts.bind(peers) }
      : hasRateCounters(data)
        ? { addRateCounts: data.addRateCounts.bind(data) }
        : {}),
    async ping() {
      await peers.ping();
      if (!same) await data.ping();
    },
    async health() {
      const p = await probe(() => peers.ping());
      const d = same ? p : await probe(() => data.ping());
      return { peers: { driver: peers.driver, ...p }, data: { driver: dataDriver, ...d } };
    },
    pendingDownloads: () => [...pending.values()].reduce((a, b) => a + b, pendingReceipts.size),
    get: (context, key) => data.get(context, key),
    put: (context, key, value) => data.put(context, key, value),
    delete: (context, key) => data.delete(context, key),
    list: (context) => data.list(context),
    close() {
      closed ??= Promise.all([peers.close(), same ? undefined : data.close()]).then(
        () => undefined,
      );
      return closed;
    },
  };
}
