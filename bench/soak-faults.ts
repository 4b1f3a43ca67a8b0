// The faults of the soak (bench/soak.ts): which process each kind kills, how
// it is brought back, and from when its recovery is measured.
import { sleep } from '@shoal/testing/processes';
import { redisCli as cli, waitFor } from '@shoal/testing/redis';
import type { LocalTopology, ServiceProcess } from '@shoal/testing/topology';
import {
  countKinds,
  type FaultLoad,
  type TopologyProcess as Proc,
} from '../tests/src/fault-drills-load.ts';

const RECOVERY_TARGET_MS = 10_000;

// docs/gc-worker.md defaults: a killed leader is replaced within a lease duration plus a retry period.
const HANDOVER_BOUND_MS = (15 + 2 + 5) * 1_000;

export type FaultKind =
  | 'redis-primary'
  | 'redis-replica'
  | 'sentinel'
  | 'storage-api'
  | 'gateway'
  | 'gc-leader'
  | 'postgres';
export const ALL_FAULTS: readonly FaultKind[] = [
  'redis-primary',
  'redis-replica',
  'sentinel',
  'storage-api',
  'gateway',
  'gc-leader',
  'postgres',
];
export interface FaultResult {
  kind: FaultKind;
  victim: string;
  /** Announces: end of the last failed answer after the kill (0: none failed). */
  recoveryMs: number;
  /** gc-leader: until another worker led; gateway: until the restarted one was back in rotation. */
  handoverMs?: number;
  /** performance.now() of the kill; the fault's window runs to the next one's. */
  since: number;
  /** Answers by kind in the window (so far, until the run ends). */
  answers: Record<string, number>;
  failures: string[];
}

/** What a fault needs of the running soak. */
export interface FaultContext {
  topo: LocalTopology;
  load: FaultLoad;
  /** Processes under fault right now; any other one that dies is a crash. */
  underFault: Set<Proc>;
  /** The gateway that is killed (the other lives through the whole run). */
  gatewayB: ServiceProcess;
  gatewayBEnd: LocalTopology['gateways'][number];
}

export { sleep };

/** Polls `check` every 100 ms (a failed check counts as "not yet"): each poll may run redis-cli. */
const waitUntil = (what: string, check: () => Promise<boolean>, ms: number): Promise<void> =>
  waitFor(what, check, ms, 100);

const redisCli = (topo: LocalTopology, port: number, args: string[]): Promise<string> =>
  cli(port, topo.secrets.redisPassword, args, 3_000);

/** Kills the process of `kind` (the `round`-th of several alike), brings it back, and waits for announces to recover. */
export async function injectFault(
  ctx: FaultContext,
  kind: FaultKind,
  round: number,
): Promise<FaultResult> {
  const { topo, load, underFault, gatewayB, gatewayBEnd } = ctx;
  const problems: string[] = [];
  let victim: Proc;
  let handoverMs: number | undefined;
  let successor: string | undefined;
  const since = performance.now();
  switch (kind) {
    case 'redis-primary': {
      const primary = await topo.redisPrimary();
      if (primary === undefined) throw new Error('no sentinel names a primary');
      victim = primary;
      underFault.add(victim);
      await primary.kill();
      await waitUntil(
        'Sentinel to promote a replica',
        async () => ![undefined, primary].includes(await topo.redisPrimary()),
        30_000,
      );
      await primary.restart();
      await waitUntil(
        `${primary.name} to rejoin as a replica`,
        async () => (await redisCli(topo, primary.port, ['ROLE'])).startsWith('slave'),
        30_000,
      );
      break;
    }
    case 'redis-replica': {
      const primary = await topo.redisPrimary();
      const replicas = topo.redisProcesses.filter((r) => r !== primary);
      victim = replicas[round % replicas.length]!;
      underFault.add(victim);
      await victim.kill();
      await sleep(3_000);
      await victim.restart();
      const port = victim.port;
      await waitUntil(
        `${victim.name} to resync`,
        async () =>
          (await redisCli(topo, port, ['INFO', 'replication'])).includes('master_link_status:up'),
        30_000,
      );
      break;
    }
    case 'sentinel': {
      victim = topo.sentinelProcesses[round % topo.sentinelProcesses.length]!;
      underFault.add(victim);
      await victim.kill();
      await sleep(3_000);
      await victim.restart();
      break;
    }
    case 'storage-api':
      victim = topo.storageApiProcess;
      underFault.add(victim);
      await victim.kill();
      await victim.restart();
      break;
    case 'gateway': {
      victim = gatewayB;
      underFault.add(victim);
      // The load balancer's view: out of rotation when it dies, back once ready.
      load.markDown(gatewayBEnd.name);
      await victim.kill();
      await victim.restart();
      await waitUntil(
        `${victim.name} to be ready`,
        async () => (await fetch(`${gatewayBEnd.admin}/readyz`)).ok,
        30_000,
      );
      load.markUp(gatewayBEnd.name);
      handoverMs = performance.now() - since;
      break;
    }
    case 'gc-leader': {
      let leader: ServiceProcess | undefined;
      await waitUntil(
        'a gc-worker to lead',
        async () => (leader = await topo.gcWorkerLeader()) !== undefined,
        30_000,
      );
      victim = leader!;
      underFault.add(victim);
      await victim.kill();
      await waitUntil(
        'another gc-worker to lead',
        async () => {
          const next = await topo.gcWorkerLeader();
          if (next !== undefined) successor = next.name;
          return next !== undefined;
        },
        60_000,
      );
      handoverMs = performance.now() - since;
      if (handoverMs > HANDOVER_BOUND_MS)
        problems.push(
          `gc lease taken over after ${handoverMs.toFixed(0)} ms (bound ${HANDOVER_BOUND_MS})`,
        );
      await victim.restart();
      break;
    }
    case 'postgres':
      victim = topo.postgresProcess;
      underFault.add(victim);
      await victim.kill();
      await victim.restart();
      break;
    default: {
      const never: never = kind;
      throw new Error(`unknown fault ${String(never)}`);
    }
  }
  underFault.delete(victim);
  let recoveryMs = Number.NaN;
  try {
    recoveryMs = (await load.waitRecovered(since, 30_000)).recoveryMs;
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (!(recoveryMs <= RECOVERY_TARGET_MS))
    problems.push(
      `announces recovered after ${recoveryMs.toFixed(0)} ms (target ${RECOVERY_TARGET_MS})`,
    );
  return {
    kind,
    victim: successor === undefined ? victim.name : `${victim.name}, ${successor} took over`,
    recoveryMs,
    ...(handoverMs === undefined ? {} : { handoverMs }),
    since,
    answers: countKinds(load.between(since)),
    failures: problems,
  };
}
