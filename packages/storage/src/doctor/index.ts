// `doctor` (docs/policy.md "Admin API"): storage-api, the only
// holder of store credentials, inspects its own backends and reports each
// finding in words an operator can act on. It opens its own short-lived
// connections (never the store's pool, so a stuck check cannot stall
// announces) and never takes longer than `timeoutMs`: what did not answer in
// time is reported as such. One file per concern: run.ts (deadline,
// findings, shared words), redis.ts (one server), redis-topology.ts
// (sentinel, cluster, ring), postgres.ts.
import type { BackendConfig, StoreConfig } from '../open/config.ts';
import { checkPostgres } from './postgres.ts';
import { checkRedis } from './redis-topology.ts';
import { HOLDS, Run, describeError, durable, type DoctorCheck, type Role } from './run.ts';

export type { DoctorCheck, DoctorStatus } from './run.ts';
export { BACKUP_MARKER } from './postgres.ts';

export interface DoctorInput {
  /**
   * The store as storage-api or an embedded gateway opens it (openStore's
   * config): a composite's peer and data backends are checked for what each
   * holds.
   */
  store: StoreConfig;
  /** The storage-api's clock, ms since the epoch; skew is measured against it. Default Date.now. */
  clock?: () => number;
  /** Whole run, ms. Default 5000. */
  timeoutMs?: number;
}

/** Each backend once, with what it holds. */
function targets(store: StoreConfig): Array<{ config: BackendConfig; role: Role }> {
  if (store.driver !== 'composite') return [{ config: store, role: 'peers+data' }];
  const { peers, data } = store;
  if (data === undefined || data.driver === peers.driver)
    return [{ config: data ?? peers, role: 'peers+data' }];
  return [
    { config: peers, role: 'peers' },
    { config: data, role: 'data' },
  ];
}

export async function runDoctor(input: DoctorInput): Promise<DoctorCheck[]> {
  const timeoutMs = input.timeoutMs ?? 5000;
  const run = new Run(timeoutMs, input.clock ?? Date.now);
  let timer: NodeJS.Timeout | undefined;
  const all = Promise.all(targets(input.store).map((t) => checkBackend(run, t.config, t.role)));
  const timedOut = new Promise<'timeout'>((resolve) => {
    // A little past the deadline: the bounded steps report their own timeouts first.
    timer = setTimeout(() => resolve('timeout'), timeoutMs + 50);
  });
  try {
    const outcome = await Promise.race([all.then(() => 'done' as const), timedOut]);
    if (outcome === 'timeout') {
      run.add(
        'doctor',
        'fail',
        `the checks did not finish within ${timeoutMs} ms; the findings above are partial`,
      );
    }
  } finally {
    clearTimeout(timer);
    run.closeAll();
  }
  return [...run.checks];
}

async function checkBackend(run: Run, config: BackendConfig, role: Role): Promise<void> {
  try {
    switch (config.driver) {
      case 'memory':
        checkMemory(run, role);
        return;
      case 'redis':
        await checkRedis(run, config.redis, role);
        return;
      case 'postgres':
        await checkPostgres(run, config.postgres, role);
        return;
    }
  } catch (err) {
    // Checks report their own failures; this is a bug or bad config, still reported in words.
    const { driver } = config;
    run.add(`${driver} doctor`, 'fail', `the ${driver} checks stopped: ${describeError(err)}`);
  }
}

function checkMemory(run: Run, role: Role): void {
  if (durable(role)) {
    run.add(
      'memory store',
      'warn',
      `${HOLDS[role]} are kept in process memory (storage-api's, or an embedded gateway's): approval lists, passkeys and download counts are lost on every restart, and only one replica can run; use DATA_STORE_DRIVER=postgres or redis with persistence`,
    );
  } else {
    run.add(
      'memory store',
      'ok',
      'peers are kept in process memory (one replica only); they are lost on restart and come back as clients re-announce',
    );
  }
}
