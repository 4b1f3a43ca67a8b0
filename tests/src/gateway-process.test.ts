// The gateway as an operator runs it: one process, configured by the
// environment, refusing bad config with every problem listed at once
// (docs/conventions.md "Config"), ready on its admin port, and gone cleanly on SIGTERM.
import { describe, expect, it } from 'vitest';
import { createSharedMemoryStore, hasRateCounters } from '@shoal/storage';
import { gatewayEnv, spawnService, startGateway } from '@shoal/testing/launcher';

describe('the gateway process', () => {
  it('refuses to start on bad config, lists every bad variable at once and never echoes the secret', async () => {
    const secret = 'not-hex-but-secret-value';
    const proc = spawnService({
      service: 'announce-gateway',
      env: gatewayEnv({ PORT: 'not-a-port', NUMWANT_MAX: '-3', UDP_CONNECTION_ID_SECRET: secret }),
    });
    const status = await proc.waitForExit(20_000).finally(() => proc.stop(1_000));
    expect(status.code).toBe(1);
    const output = [...proc.stderr, ...proc.stdout].join('\n');
    for (const key of ['PORT', 'NUMWANT_MAX', 'UDP_CONNECTION_ID_SECRET'])
      expect(output).toContain(key);
    expect(output).not.toContain(secret);
    expect(proc.stdout.some((l) => l.includes('"listening"'))).toBe(false);
  }, 30_000);

  it('with workers, refuses a fixed port another gateway already serves instead of sharing it through SO_REUSEPORT (docs/workers.md "Ports")', async () => {
    const first = await startGateway({ STORAGE_DRIVER: 'memory', GATEWAY_WORKERS: '2' });
    try {
      // The first gateway's workers hold the port with SO_REUSEPORT, which would let the second join them.
      const second = spawnService({
        service: 'announce-gateway',
        env: gatewayEnv({
          STORAGE_DRIVER: 'memory',
          GATEWAY_WORKERS: '2',
          PORT: String(first.udpPort),
        }),
      });
      const status = await second.waitForExit(60_000).finally(() => second.stop(1_000));
      expect(status.code, second.describe()).toBe(1);
      const output = [...second.stderr, ...second.stdout].join('\n');
      expect(output).toContain(`port ${first.udpPort}/udp is in use by another process`);
      expect(second.stdout.some((l) => l.includes('"listening"'))).toBe(false);
      // The first gateway still answers on its port.
      const res = await fetch(first.adminUrl('/readyz'), { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  }, 120_000);

  it('serves /healthz, /readyz and /metrics on the admin port once listening, and exits 0 on SIGTERM', async () => {
    const gateway = await startGateway({ STORAGE_DRIVER: 'memory' });
    try {
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        const res = await fetch(gateway.adminUrl(path), { signal: AbortSignal.timeout(5_000) });
        expect(res.status, path).toBe(200);
      }
      expect(gateway.httpPort).toBe(gateway.udpPort);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
    expect(gateway.stdout.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
  }, 30_000);

  it('says where it listens at LOG_LEVEL=warn, with no other info line (docs/decisions.md "Listening line")', async () => {
    // The launcher read the ports from the listening line: the admin port answers.
    const gateway = await startGateway({ STORAGE_DRIVER: 'memory', LOG_LEVEL: 'warn' });
    try {
      const res = await fetch(gateway.adminUrl('/healthz'), { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(200);
      const info = gateway.stdout.filter((l) => l.includes('"level":30'));
      expect(info).toHaveLength(1);
      expect(info[0]).toContain('"msg":"listening"');
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 60_000);

  it('runs the memory driver in one thread when RATE_LIMIT_SHARED needs counters the shared-memory store lacks, and says so (docs/workers.md)', async () => {
    const { store } = createSharedMemoryStore({ peerLifetimeSeconds: 120 });
    const counters = hasRateCounters(store);
    await store.close();
    const gateway = await startGateway({
      STORAGE_DRIVER: 'memory',
      GATEWAY_WORKERS: '2',
      RATE_LIMIT_SHARED: 'true',
      RATE_LIMIT_ANNOUNCES_PER_SECOND: '100',
    });
    try {
      const res = await fetch(gateway.adminUrl('/metrics'), { signal: AbortSignal.timeout(5_000) });
      const text = await res.text();
      if (counters) {
        expect(gateway.listening).toMatchObject({ storage: 'shared-memory', workers: 2 });
      } else {
        expect(gateway.listening).toMatchObject({ storage: 'memory', workers: 1 });
        const warning = gateway.stdout.find((l) =>
          l.includes('running 1 worker on the memory store'),
        );
        expect(warning, gateway.describe()).toContain('"level":40');
        // One thread: no worker series; the swarm gauges of its own store.
        expect(text).not.toContain('shoal_gateway_workers');
        expect(text).toContain('shoal_swarm_torrents 0');
      }
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 120_000);
});
