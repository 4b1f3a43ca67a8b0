// The election loop shared by the Kubernetes and storage-api electors, after
// client-go's leaderelection package: candidates try every retry period,
// leaders renew every retry period and stop leading when no renewal has
// succeeded within the renew deadline (or at once when another holder shows
// up). The lease duration is longer than the renew deadline, so a leader cut
// off from the store stops before any other candidate may take over.
import type { Logger } from 'pino';
import type { ElectionMode } from '../config.ts';
import type { ElectionTiming, LeaderElector, LeaseBackend } from './types.ts';

export interface LeaseElectorOptions {
  mode: ElectionMode;
  identity: string;
  backend: LeaseBackend;
  timing: ElectionTiming;
  logger: Logger;
  clock?: () => number;
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export function createLeaseElector(options: LeaseElectorOptions): LeaderElector {
  const { backend, timing, identity } = options;
  const clock = options.clock ?? Date.now;
  const log = options.logger.child({ module: 'election', mode: options.mode, identity });
  const listeners: Array<(leading: boolean) => void> = [];
  let leading = false;
  let lastRenew = Number.NEGATIVE_INFINITY;
  let started = false;
  let stopped = false;
  let roundTimer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  const stopping = new AbortController();

  const isLeader = (): boolean => leading && clock() - lastRenew < timing.renewDeadlineMs;

  const set = (next: boolean, why: string): void => {
    if (leading === next) return;
    leading = next;
    if (!next) clearTimeout(deadlineTimer);
    log.info({ leading: next, why }, next ? 'started leading' : 'stopped leading');
    for (const l of listeners) l(next);
  };

  const armDeadline = (): void => {
    clearTimeout(deadlineTimer);
    const due = lastRenew + timing.renewDeadlineMs - clock();
    deadlineTimer = setTimeout(
      () => {
        if (leading && !isLeader()) set(false, 'renew deadline passed');
      },
      Math.max(0, due),
    );
    deadlineTimer.unref();
  };

  async function attempt(): Promise<void> {
    const startedAt = clock();
    // A leader's call may not outlast its renew deadline; a candidate's is
    // bounded the same way so a hung store never stalls the loop.
    const budget = leading
      ? Math.max(1, lastRenew + timing.renewDeadlineMs - startedAt)
      : timing.renewDeadlineMs;
    const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(budget)]);
    let holds: boolean;
    try {
      holds = await abortable(backend.tryAcquireOrRenew(signal), signal);
    } catch (err) {
      if (stopped) return;
      log.warn({ err, leading }, leading ? 'lease renewal failed' : 'lease acquisition failed');
      if (leading && !isLeader()) set(false, 'renew deadline passed');
      return;
    }
    if (stopped) return;
    if (holds) {
      // The store renewed at some moment after startedAt: counting from
      // startedAt keeps this worker's view of its lease conservative.
      lastRenew = startedAt;
      set(true, 'lease acquired');
      armDeadline();
    } else {
      set(false, 'lease held by another worker');
    }
  }

  const schedule = (): void => {
    if (stopped) return;
    // Up to 20% jitter so candidates that started together spread out.
    const wait = timing.retryPeriodMs * (1 + Math.random() * 0.2);
    roundTimer = setTimeout(() => {
      round = attempt().finally(schedule);
    }, wait);
  };

  return {
    mode: options.mode,
    identity,
    start() {
      if (started || stopped) return;
      started = true;
      round = attempt().finally(schedule);
    },
    isLeader,
    onChange(listener) {
      listeners.push(listener);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(roundTimer);
      clearTimeout(deadlineTimer);
      stopping.abort(new Error('elector stopping'));
      await round?.catch(() => undefined);
      set(false, 'shutting down');
      if (!started) return;
      try {
        await abortable(
          backend.release(AbortSignal.timeout(timing.renewDeadlineMs)),
          AbortSignal.timeout(timing.renewDeadlineMs),
        );
        log.info('lease released');
      } catch (err) {
        log.warn({ err }, 'lease release failed; it expires on its own');
      }
    },
  };
}

/** LEADER_ELECTION=none: one worker, always leading once started. */
export function createNoElection(identity: string): LeaderElector {
  let leading = false;
  const listeners: Array<(leading: boolean) => void> = [];
  const set = (next: boolean): void => {
    if (leading === next) return;
    leading = next;
    for (const l of listeners) l(next);
  };
  return {
    mode: 'none',
    identity,
    start: () => set(true),
    isLeader: () => leading,
    onChange: (l) => listeners.push(l),
    stop() {
      set(false);
      return Promise.resolve();
    },
  };
}
