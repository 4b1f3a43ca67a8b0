// Two optional HTTP headers beside the batch body (docs/load.md): the
// gateway tells storage-api how long the batch's peers were promised, and
// storage-api tells the gateway how loaded it is. Headers rather than body
// bytes so that either side of an older release ignores them and the batch
// version stays the same.

/** Request: the longest lifetime, in whole seconds, promised to any announce of the batch. */
export const STORAGE_RPC_LIFETIME_HEADER = 'x-shoal-peer-lifetime-seconds';
/** Response: `latency=<ratio>, queue=<ratio>`, each 1 at storage-api's target. */
export const STORAGE_RPC_LOAD_HEADER = 'x-shoal-load';

/** storage-api's load as one batch answer reports it; 1 is at target. */
export interface LoadReport {
  /** The batch's store time over storage-api's target. */
  latency: number;
  /** Store operations in flight when the batch started over storage-api's target. */
  queue: number;
}

/** The most either ratio may say: a report past it is clamped, not trusted further. */
const MAX_RATIO = 1000;
const LOAD_PATTERN = /^latency=(\d{1,4}(?:\.\d{1,6})?), ?queue=(\d{1,4}(?:\.\d{1,6})?)$/;

function ratio(n: number): number {
  return n <= 0 || !Number.isFinite(n) ? 0 : n >= MAX_RATIO ? MAX_RATIO : n;
}

export function formatLoadReport(report: LoadReport): string {
  return `latency=${ratio(report.latency).toFixed(3)}, queue=${ratio(report.queue).toFixed(3)}`;
}

/** undefined for an absent or malformed header (an older storage-api, a proxy's rewrite). */
export function parseLoadReport(value: string | string[] | undefined): LoadReport | undefined {
  if (typeof value !== 'string') return undefined;
  const m = LOAD_PATTERN.exec(value);
  if (m === null) return undefined;
  return { latency: ratio(Number(m[1])), queue: ratio(Number(m[2])) };
}

/** A positive whole number of seconds, or undefined (absent, malformed: the store's own lifetime applies). */
export function parseLifetimeHeader(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^[1-9]\d{0,8}$/.test(value)) return undefined;
  return Number(value);
}
