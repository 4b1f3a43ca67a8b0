// The split topology as containers (harness/container-topology.ts): the
// service images the Dockerfile builds, Redis Sentinel and PostgreSQL in
// images from the same local base, on the host network. Through them: the
// tracker conformance suite against the containerised gateways, an aria2
// transfer from a seeder on gateway A to a leecher on gateway B, a SIGKILL
// of the Redis primary's container with announces back within the bound the
// sentinels' own timing gives (`sentinelRecoveryBoundMs`), and
// `podman stop` of every container leaving nothing running. Whatever fails,
// afterAll removes every container of the run (by its label) and checks
// that `podman ps -a` lists none.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  expectRecovered,
  killPrimaryUnderLoad,
  sentinelRecoveryBoundMs,
} from '@shoal/testing/sentinel-drill';
import { httpAnnounce, randomInfoHash, randomPeerId } from '@shoal/testing/tracker-client';
import { expectTransferAcross } from '../src/harness/aria2-transfer.ts';
import type { Deployment, TopologySpec, TrackerEndpoint } from '../src/harness/topologies.ts';
import { CASES, REQUIREMENTS, ipv6LoopbackAvailable } from '../src/tracker-conformance-cases.ts';
import {
  TEST_SHUTDOWN_GRACE_SECONDS,
  startContainerTopology,
  type ContainerGateway,
  type ContainerTopology,
} from './harness/container-topology.ts';
import { ContainerRun } from './harness/podman.ts';

const images = inject('images');
const run = new ContainerRun();
const machine = { ipv6Loopback: await ipv6LoopbackAvailable() };
let topo: ContainerTopology | undefined;
let workRoot = '';

beforeAll(async () => {
  workRoot = await mkdtemp(join(tmpdir(), 'shoal-containers-test-'));
  const started = performance.now();
  try {
    // The process harness's Sentinel timings (packages/testing/src/redis.ts): a
    // failed election is retried after 2 x 10 s instead of deploy/redis's 2 x 60 s.
    topo = await startContainerTopology(run, images, {
      sentinelDownAfterMs: 1000,
      sentinelFailoverTimeoutMs: 10_000,
    });
  } catch (err) {
    process.stderr.write(`${await run.describe()}\n`);
    throw err;
  }
  console.info(
    `container topology (run ${run.id}): ${run.containers.length} containers ready in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}, 600_000);

afterAll(async () => {
  const left = await run.removeAll();
  topo?.removeStateDir();
  if (workRoot !== '') await rm(workRoot, { recursive: true, force: true });
  expect(left, `podman ps -a --filter ${run.filter}`).toEqual([]);
}, 180_000);

function started(): ContainerTopology {
  if (topo === undefined) throw new Error('the container topology did not start');
  return topo;
}

function endpoint(name: string, g: ContainerGateway, host: string): TrackerEndpoint {
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    name,
    host,
    httpPort: g.port,
    udpPort: g.port,
    announceUrl: (kind) =>
      kind === 'http' ? `http://${h}:${g.port}/announce` : `udp://${h}:${g.port}/announce`,
    scrapeUrl: () => `http://${h}:${g.port}/scrape`,
    alive: () => g.container.runningNow(),
  };
}

/** The containerised gateways as the conformance cases see a deployment. */
function deployment(): Deployment {
  const [a, b] = started().gateways;
  return {
    replicas: [endpoint('gateway-a', a, '127.0.0.1'), endpoint('gateway-b', b, '127.0.0.1')],
    // Gateway B listens on :: as the chart binds it: its IPv6 side is the [::1] replica.
    ipv6: machine.ipv6Loopback ? endpoint('gateway-b [::1]', b, '::1') : undefined,
    describe: () => 'container logs: see the test output',
    stop: async () => {},
  };
}

const spec: TopologySpec = {
  name: 'containers',
  sharedSwarm: true,
  // storage-api on Redis with docs/redis.md's defaults: peer_ids not stored.
  keepsPeerIds: false,
  start: () => Promise.resolve(deployment()),
};

describe('tracker conformance against the containerised gateways', () => {
  for (const c of CASES) {
    const missing = (c.needs ?? []).filter((r) => !REQUIREMENTS[r].holds(spec, machine));
    if (missing.length === 0) {
      it(c.name, async () => {
        try {
          await c.run(deployment(), spec);
        } catch (err) {
          process.stderr.write(`containers / ${c.name}:\n${await run.describe()}\n`);
          throw err;
        }
      });
    } else {
      const reason = missing.map((r) => REQUIREMENTS[r].reason).join('; ');
      it(`${c.name} (n/a: ${reason})`, async () => {
        for (const r of missing) await REQUIREMENTS[r].premise(deployment());
      });
    }
  }
});

describe('the split topology as containers', () => {
  it('lets an aria2 leecher announcing only to gateway B download, byte-identical, from a seeder announcing only to A', async () => {
    const [a, b] = started().gateways.map((g) => ({
      httpAnnounce: `http://127.0.0.1:${g.port}/announce`,
      scrape: `http://127.0.0.1:${g.port}/scrape`,
    }));
    await expectTransferAcross(join(workRoot, 'aria2'), a!, b!);
  }, 150_000);

  it('answers announces again after a SIGKILL of the Redis primary container, within the bound of the sentinels’ timing', async () => {
    const t = started();
    const [a, b] = t.gateways;
    const swarm = randomInfoHash();
    const before = await httpAnnounce(`http://127.0.0.1:${a.port}/announce`, {
      infoHash: swarm,
      peerId: randomPeerId(),
      port: 29_001,
      left: 0n,
    });
    expect(before.seeders).toBe(1);
    const primary = await t.redisPrimary();
    expect(primary, 'the sentinels name a primary').toBeDefined();
    const load = Array.from({ length: 16 }, () => randomInfoHash());
    const report = await killPrimaryUnderLoad(
      { killPrimary: () => primary!.container.kill('KILL') },
      (i) =>
        httpAnnounce(`http://127.0.0.1:${(i % 2 === 0 ? a : b).port}/announce`, {
          infoHash: load[i % load.length]!,
          peerId: randomPeerId(),
          port: 30_000 + (i % 30_000),
          left: 1000n,
        }).catch((err: unknown) => {
          const code = /\[([A-Z_]+)\]/.exec(String(err))?.[1] ?? 'unknown';
          throw Object.assign(new Error(String(err)), { code });
        }),
      'containers, through both gateways',
    );
    expect((await primary!.container.state()).running).toBe(false);
    // An unloaded run recovers in a few seconds (docs/redis.md "Failover
    // drill"); the bound allows the elections Sentinel retries under load.
    expectRecovered(report, {
      recoveredWithinMs: sentinelRecoveryBoundMs(t.sentinelTiming),
      maxLatencyMs: 3000,
    });
    const next = await t.redisPrimary();
    expect(next?.port).not.toBe(primary!.port);
  }, 240_000);

  it('stops every container with `podman stop`: the services drain and exit 0, nothing is left running', async () => {
    const t = started();
    const services = new Set([...t.gateways.map((g) => g.container), t.gcWorker, t.storageApi]);
    for (const group of t.stopOrder()) {
      await Promise.all(
        group.map(async (c) => {
          const t0 = performance.now();
          // Past the drain time podman would SIGKILL (exit 137): the services must be done before.
          await c.stop(TEST_SHUTDOWN_GRACE_SECONDS + 15);
          const state = await c.state();
          expect(state.running, c.spec.name).toBe(false);
          if (services.has(c)) {
            expect(state.exitCode, `${c.spec.name} exit code\n${await c.logs()}`).toBe(0);
            expect(performance.now() - t0).toBeLessThan((TEST_SHUTDOWN_GRACE_SECONDS + 10) * 1000);
          }
        }),
      );
    }
    expect(await run.running()).toEqual([]);
  }, 120_000);
});
