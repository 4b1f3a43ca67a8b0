// One doctor run (docs/policy.md "Admin API"): its deadline, the findings
// so far, the connections to close, and the words shared by every backend's
// checks.
import { StoreError } from '../errors.ts';
import type { HostPort } from '../redis/config.ts';

/** Why clock skew matters, for both Redis and PostgreSQL findings. */
const SKEW_CONSEQUENCE =
  'peer expiry is computed from the clock of whichever storage-api or gateway writes, so clocks that disagree expire peers early or keep them too long';

export type DoctorStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  status: DoctorStatus;
  message: string;
}

/**
 * What a backend holds decides how strict the checks are: peers are
 * ephemeral (clients re-announce within an interval), download counts and KV
 * data (approval lists, passkeys) are not. One driver named for both is one
 * backend (storage-api opens it once) and then also holds the download counts.
 */
export type Role = 'peers' | 'data' | 'peers+data';

export const HOLDS: Record<Role, string> = {
  peers: 'peers only',
  data: 'download counts and KV data',
  'peers+data': 'peers, download counts and KV data',
};

export const durable = (role: Role): boolean => role !== 'peers';
export const holdsPeers = (role: Role): boolean => role !== 'data';

const SKEW_WARN_MS = 1000;
const SKEW_FAIL_MS = 5000;

/** Every check of one run: a deadline, the checks found so far, the connections to close. */
export class Run {
  readonly checks: DoctorCheck[] = [];
  readonly deadline: number;
  readonly clock: () => number;
  readonly #closers = new Set<() => void>();

  constructor(timeoutMs: number, clock: () => number) {
    this.deadline = performance.now() + timeoutMs;
    this.clock = clock;
  }

  add(name: string, status: DoctorStatus, message: string): void {
    this.checks.push({ name, status, message });
  }

  remaining(): number {
    return Math.max(1, Math.floor(this.deadline - performance.now()));
  }

  /** Rejects with a timeout once the run's deadline passes. */
  bounded<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreError('STORE_ERR_TIMEOUT', `${what}: no answer in time`)),
        this.remaining(),
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  onClose(close: () => void): () => void {
    this.#closers.add(close);
    return () => {
      this.#closers.delete(close);
      close();
    };
  }

  closeAll(): void {
    for (const close of this.#closers) close();
    this.#closers.clear();
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function formatSkew(ms: number): string {
  const s = Math.abs(ms) / 1000;
  return `${s < 10 ? s.toFixed(2) : s.toFixed(0)} s ${ms >= 0 ? 'ahead of' : 'behind'}`;
}

function skewCheck(run: Run, name: string, who: string, skewMs: number, consequence: string): void {
  const abs = Math.abs(skewMs);
  const status: DoctorStatus = abs > SKEW_FAIL_MS ? 'fail' : abs > SKEW_WARN_MS ? 'warn' : 'ok';
  const text = `the clock of ${who} is ${formatSkew(skewMs)} storage-api's`;
  run.add(
    name,
    status,
    status === 'ok' ? text : `${text}: ${consequence}; run NTP (chrony, timesyncd) on both hosts`,
  );
}

/** Compares the server's clock (`serverMs`, read in one round trip) with ours, at the midpoint. */
export async function clockCheck(
  run: Run,
  name: string,
  where: string,
  serverMs: () => Promise<number>,
): Promise<void> {
  const local = run.clock();
  const started = performance.now();
  const remote = await serverMs();
  skewCheck(
    run,
    name,
    where,
    remote - (local + (performance.now() - started) / 2),
    SKEW_CONSEQUENCE,
  );
}

/** A server that answered at first and then failed a later check. */
export function stoppedAnswering(run: Run, name: string, where: string, err: unknown): void {
  run.add(name, 'fail', `${where} stopped answering during the checks: ${describeError(err)}`);
}

export const addr = (n: HostPort): string =>
  n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`;

/**
 * Words for a connection that failed for a network reason, the same for
 * every server; undefined when the cause is the server's own answer.
 */
export function networkFailure(
  code: string,
  message: string,
  where: string,
  timeoutMs: number,
): string | undefined {
  if (code === 'ECONNREFUSED')
    return `${where} refused the connection: nothing listens there (server down or wrong address)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return `${where}: the host name does not resolve (${code})`;
  if (code === 'ETIMEDOUT' || code === 'STORE_ERR_TIMEOUT' || /timeout|timed? ?out/i.test(message))
    return `${where} did not answer within ${timeoutMs} ms (firewall, wrong address, or a hung server)`;
  return undefined;
}

/** The code and message of anything thrown. */
export function codeAndMessage(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof e?.code === 'string' ? e.code : '',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}
