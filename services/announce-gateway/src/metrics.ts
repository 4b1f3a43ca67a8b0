// Gateway metrics on an injected prom-client Registry (docs/conventions.md
// "Composition"). Label values are bounded: protocol, action, outcome and
// catalog error codes; never an infohash or an address.
import { Counter, Gauge, collectDefaultMetrics, type Metric, type Registry } from 'prom-client';
import { policyErrors, type PolicyErrorCode } from '@shoal/policy';

export type Protocol = 'http' | 'udp' | 'ws';
export type Action = 'announce' | 'scrape' | 'connect';
/** ok: answered; rejected: the client's fault (bad input, bad connection id); failed: ours (storage, bug). */
export type Outcome = 'ok' | 'rejected' | 'failed';
export type DropReason = 'malformed' | 'closing' | 'send_failed' | 'banned';
export type PolicyRefreshOutcome = 'changed' | 'unchanged' | 'failed';

interface RequestSeries {
  inc(): void;
}

/**
 * A counter child for the per-request path: inc() adds 1 to a number, and
 * the sum goes to prom-client when the registry collects. prom-client's own
 * labels().inc() hashes and validates the label object on every call
 * (BENCHMARKS.md "The hot path and the scale table").
 */
export class BatchedSeries implements RequestSeries {
  #pending = 0;
  readonly #target: { inc(value: number): void };

  constructor(target: { inc(value: number): void }) {
    this.#target = target;
  }

  inc(): void {
    this.#pending++;
  }

  flush(): void {
    if (this.#pending === 0) return;
    this.#target.inc(this.#pending);
    this.#pending = 0;
  }
}

export interface GatewayMetrics {
  /** Pre-bound counter children: `request(protocol, action, outcome).inc()` allocates nothing. */
  request(protocol: Protocol, action: Action, outcome: Outcome): RequestSeries;
  /** Seconds since `startMs` (performance.now(), a double: no BigInt per request) into the histogram. */
  observe(protocol: Protocol, action: Action, startMs: number): void;
  error(protocol: Protocol, code: string): void;
  udpDropped(reason: DropReason): void;
  connectionIdRejected(): void;
  /** An HTTP connection closed on accept because HTTP_MAX_CONNECTIONS were held (docs/limits.md). */
  httpConnectionDropped(): void;
  /** An announce of a BEP 21 partial seed was answered. */
  partialSeedAnnounced(): void;
  /** An answered HTTP announce carried BEP 7 `ipv4=`/`ipv6=`: an address of the other family registered (used) or not (ignored). */
  bep7Address(outcome: 'used' | 'ignored'): void;
  policyRefreshed(outcome: PolicyRefreshOutcome): void;
  /** This gateway banned a source (docs/policy.md "Abuse control"). */
  banApplied(reason: 'bad_connection_id' | 'malformed'): void;
  /** A hybrid link learned from a client (docs/policy.md "Hybrid torrents"). */
  linkLearned(outcome: LinkLearnOutcome): void;
  /** A snapshot was loaded or confirmed unchanged at `atMs` (clock ms); resets the revision age. */
  policyConfirmed(
    atMs: number,
    sizes?: { torrents: number; clients: number; passkeys: number; links: number },
  ): void;
}

/** learned: stored; known: already stored; conflict: a hash already in another link; failed: not written. */
export type LinkLearnOutcome = 'learned' | 'known' | 'conflict' | 'failed';

const PROTOCOLS: readonly Protocol[] = ['http', 'udp', 'ws'];
const ACTIONS: readonly Action[] = ['announce', 'scrape', 'connect'];
const OUTCOMES: readonly Outcome[] = ['ok', 'rejected', 'failed'];

/** The chain's refusals (docs/policy.md), each a bounded label value of shoal_policy_refusals_total. */
const POLICY_REFUSAL_CODES = (Object.keys(policyErrors) as PolicyErrorCode[]).filter(
  (code) => !code.startsWith('POLICY_ERR_BAD_') && code !== 'POLICY_ERR_LINK_CONFLICT',
);

/** `clock` (ms since the epoch) ages the policy snapshot for shoal_policy_revision_age_seconds. */
/**
 * `processMetrics` false leaves out prom-client's process and Node.js
 * metrics: a worker thread's (docs/workers.md "Metrics") would repeat the
 * process-wide ones the main thread already publishes.
 */
export function createGatewayMetrics(
  registry: Registry,
  clock: () => number = Date.now,
  processMetrics = true,
): GatewayMetrics {
  // Default process metrics once per registry: two gateways may share one in tests.
  if (processMetrics && registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry });
  }
  // The children of the two per-packet counters, flushed into them on every collect.
  const batched: BatchedSeries[] = [];
  const flushBatched = (): void => {
    for (const series of batched) series.flush();
  };
  const requests = new Counter({
    name: 'shoal_requests_total',
    help: 'Tracker requests answered, by protocol, action and outcome.',
    labelNames: ['protocol', 'action', 'outcome'] as const,
    registers: [registry],
    collect: flushBatched,
  });
  const duration = new FastHistogram(
    'shoal_request_duration_seconds',
    'Time from a request arriving to its answer being handed to the socket.',
    REQUEST_BUCKETS,
  );
  registry.registerMetric(duration.asMetric());
  const errors = new Counter({
    name: 'shoal_request_errors_total',
    help: 'Requests refused or failed, by protocol and error code.',
    labelNames: ['protocol', 'code'] as const,
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'shoal_udp_dropped_packets_total',
    help: 'UDP packets not answered: malformed without a transaction id, arriving while closing, or unsendable.',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect: flushBatched,
  });
  const droppedConnections = new Counter({
    name: 'shoal_http_connections_dropped_total',
    help: 'HTTP connections closed on accept because the process already held HTTP_MAX_CONNECTIONS.',
    registers: [registry],
  });
  droppedConnections.inc(0);
  const partialSeeds = new Counter({
    name: 'shoal_partial_seed_announces_total',
    help: 'Announces answered for BEP 21 partial seeds (HTTP event=paused, not a seeder).',
    registers: [registry],
  });
  partialSeeds.inc(0);
  const bep7 = new Counter({
    name: 'shoal_bep7_address_announces_total',
    help: 'Answered HTTP announces carrying BEP 7 ipv4= or ipv6=, by outcome: used (the peer was also registered at the other family address), ignored.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const bep7Table = { used: bep7.labels('used'), ignored: bep7.labels('ignored') };
  bep7Table.used.inc(0);
  bep7Table.ignored.inc(0);
  const rejectedIds = new Counter({
    name: 'shoal_udp_connection_id_rejections_total',
    help: 'UDP announces and scrapes refused for an unknown or expired connection id (BEP 15).',
    registers: [registry],
  });

  const policyRefresh = new Counter({
    name: 'shoal_policy_refresh_total',
    help: 'Reloads of the approval lists and passkeys, by outcome: changed, unchanged, failed (the last snapshot is kept).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  let confirmedAt: number | undefined;
  new Gauge({
    name: 'shoal_policy_revision_age_seconds',
    help: 'Seconds since the policy snapshot was last loaded or confirmed unchanged (0 while no policy step is on).',
    registers: [registry],
    collect() {
      this.set(confirmedAt === undefined ? 0 : Math.max(0, (clock() - confirmedAt) / 1000));
    },
  });
  const policyEntries = new Gauge({
    name: 'shoal_policy_entries',
    help: 'Entries in the cached policy snapshot, by list: torrents, clients, passkeys, links.',
    labelNames: ['list'] as const,
    registers: [registry],
  });
  const policyRefusals = new Counter({
    name: 'shoal_policy_refusals_total',
    help: "Announces, scrapes and UDP connects refused by the gateway's policy chain, by error code.",
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const bans = new Counter({
    name: 'shoal_abuse_bans_total',
    help: 'Sources this gateway banned by itself, by reason: bad_connection_id, malformed.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const linksLearned = new Counter({
    name: 'shoal_hybrid_links_learned_total',
    help: 'Links of hybrid torrents learned from clients announcing both hashes, by outcome: learned, known, conflict, failed.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const refreshTable = {
    changed: policyRefresh.labels('changed'),
    unchanged: policyRefresh.labels('unchanged'),
    failed: policyRefresh.labels('failed'),
  } satisfies Record<PolicyRefreshOutcome, RequestSeries>;
  for (const series of Object.values(refreshTable)) series.inc(0);
  for (const list of ['torrents', 'clients', 'passkeys', 'links'] as const)
    policyEntries.labels(list).set(0);
  const refusalTable: Record<string, RequestSeries | undefined> = Object.create(null) as Record<
    string,
    RequestSeries | undefined
  >;
  for (const code of POLICY_REFUSAL_CODES) {
    const series = policyRefusals.labels(code);
    series.inc(0);
    refusalTable[code] = series;
  }

  // Children bound once, looked up by literal keys: the hot path builds no label strings.
  const seriesTable = {} as Record<Protocol, Record<Action, Record<Outcome, RequestSeries>>>;
  const timerTable = {} as Record<Protocol, Record<Action, HistogramSeries>>;
  for (const protocol of PROTOCOLS) {
    seriesTable[protocol] = {} as Record<Action, Record<Outcome, RequestSeries>>;
    timerTable[protocol] = {} as Record<Action, HistogramSeries>;
    for (const action of ACTIONS) {
      timerTable[protocol][action] = duration.series({ protocol, action });
      seriesTable[protocol][action] = {} as Record<Outcome, RequestSeries>;
      for (const outcome of OUTCOMES) {
        const child = requests.labels(protocol, action, outcome);
        // labels() alone creates no series: start each at 0 so rate() sees the first burst.
        child.inc(0);
        const series = new BatchedSeries(child);
        batched.push(series);
        seriesTable[protocol][action][outcome] = series;
      }
    }
  }
  const droppedTable = {} as Record<DropReason, RequestSeries>;
  for (const reason of ['malformed', 'banned', 'closing', 'send_failed'] as const) {
    const child = dropped.labels(reason);
    child.inc(0);
    const series = new BatchedSeries(child);
    batched.push(series);
    droppedTable[reason] = series;
  }
  // The error panels and the storage-unavailable alert read 0, not "no data", before any failure.
  for (const protocol of PROTOCOLS) errors.labels(protocol, 'STORE_ERR_UNAVAILABLE').inc(0);
  // Every label value, so the ban and link panels read 0 before the first event.
  const banReasons = { bad_connection_id: 0, malformed: 0 } satisfies Record<
    Parameters<GatewayMetrics['banApplied']>[0],
    0
  >;
  for (const reason of Object.keys(banReasons)) bans.labels(reason).inc(0);
  const learnOutcomes = { learned: 0, known: 0, conflict: 0, failed: 0 } satisfies Record<
    LinkLearnOutcome,
    0
  >;
  for (const outcome of Object.keys(learnOutcomes)) linksLearned.labels(outcome).inc(0);

  return {
    request: (protocol, action, outcome) => seriesTable[protocol][action][outcome],
    observe: (protocol, action, startMs) => {
      timerTable[protocol][action].observe((performance.now() - startMs) / 1000);
    },
    error: (protocol, code) => {
      errors.labels(protocol, code).inc();
      refusalTable[code]?.inc();
    },
    udpDropped: (reason) => droppedTable[reason].inc(),
    connectionIdRejected: () => rejectedIds.inc(),
    httpConnectionDropped: () => droppedConnections.inc(),
    partialSeedAnnounced: () => partialSeeds.inc(),
    bep7Address: (outcome) => bep7Table[outcome].inc(),
    policyRefreshed: (outcome) => refreshTable[outcome].inc(),
    linkLearned: (outcome) => linksLearned.labels(outcome).inc(),
    banApplied: (reason) => bans.labels(reason).inc(),
    policyConfirmed: (atMs, sizes) => {
      confirmedAt = atMs;
      if (sizes === undefined) return;
      policyEntries.labels('torrents').set(sizes.torrents);
      policyEntries.labels('clients').set(sizes.clients);
      policyEntries.labels('passkeys').set(sizes.passkeys);
      policyEntries.labels('links').set(sizes.links);
    },
  };
}

export const REQUEST_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

export interface HistogramSeries {
  observe(value: number): void;
}

/**
 * A histogram with fixed label sets whose observe() is an array increment.
 * prom-client's labeled observe() rebuilds and hashes the label object on
 * every call: 20% of a UDP announce's CPU in a profile under
 * the benchmark harness's UDP load (BENCHMARKS.md). The registry renders this one exactly as it
 * renders a prom-client Histogram (metrics.test.ts compares the two).
 */
export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  readonly #series: Array<{
    labels: Record<string, string>;
    buckets: Float64Array;
    sum: number;
    count: number;
  }> = [];

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#bounds = bounds;
  }

  series(labels: Record<string, string>): HistogramSeries {
    const bounds = this.#bounds;
    // One slot per bound plus +Inf; counts are per bucket, made cumulative on scrape.
    const s = { labels, buckets: new Float64Array(bounds.length + 1), sum: 0, count: 0 };
    this.#series.push(s);
    return {
      observe(value: number): void {
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        s.buckets[i]!++;
        s.sum += value;
        s.count++;
      },
    };
  }

  /** The shape prom-client's Registry reads from its own metrics (get(), name, help, type). */
  asMetric(): Metric {
    interface Value {
      labels: Record<string, string | number>;
      value: number;
      metricName: string;
    }
    const get = (): Promise<{
      name: string;
      help: string;
      type: string;
      aggregator: string;
      values: Value[];
    }> => {
      const values: Value[] = [];
      for (const s of this.#series) {
        let cumulative = 0;
        for (let i = 0; i <= this.#bounds.length; i++) {
          cumulative += s.buckets[i]!;
          const le = i < this.#bounds.length ? this.#bounds[i]! : '+Inf';
          values.push({
            labels: { le, ...s.labels },
            value: cumulative,
            metricName: `${this.name}_bucket`,
          });
        }
        values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
        values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
      }
      return Promise.resolve({
        name: this.name,
        help: this.help,
        type: 'histogram',
        aggregator: 'sum',
        values,
      });
    };
    // Registry calls get() and reads name/help/type; this names that contract, not prom-client's class.
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      get,
    } as unknown as Metric;
  }
}
