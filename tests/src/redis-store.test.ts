// The Redis store through the gateway: the same aria2 transfer as the memory store,
// with peers in a real redis-server; and a Sentinel failover under steady
// announce load, where the gateway must answer "retry later" while no
// primary exists, never crash or hang, and serve the replicated peers after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, startSentinelSet, type SentinelSet } from '@shoal/testing/redis';
import {
  expectRecovered,
  killPrimaryUnderLoad,
  sentinelRecoveryBoundMs,
} from '@shoal/testing/sentinel-drill';
import { describeAria2Transfer } from './harness/aria2-transfer.ts';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import {
  httpAnnounce,
  httpScrape,
  randomInfoHash,
  randomPeerId,
} from '@shoal/testing/tracker-client';

describeAria2Transfer('redis store', async () => {
  const redis = await startRedis();
  return {
    env: {
      STORAGE_DRIVER: 'redis',
      REDIS_ADDRESSES: redis.address,
      REDIS_PASSWORD: redis.password ?? '',
    },
    stop: () => redis.close(),
  };
});

/** The bracketed error code a refusal carries, e.g. "... [STORE_ERR_UNAVAILABLE]". */
function codeOfFailure(err: unknown): string {
  const m = /\[([A-Z_]+)\]/.exec(err instanceof Error ? err.message : String(err));
  return m?.[1] ?? 'unknown';
}

describe('redis sentinel behind the gateway', () => {
  let set: SentinelSet;
  let gateway: GatewayProcess;
  beforeAll(async () => {
    set = await startSentinelSet({ replicas: 2, sentinels: 3 });
    gateway = await startGateway({
      STORAGE_DRIVER: 'redis',
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: set.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
      REDIS_MASTER_NAME: set.masterName,
      REDIS_PASSWORD: set.password,
      REDIS_SENTINEL_PASSWORD: set.sentinelPassword,
      REDIS_COMMAND_TIMEOUT_MS: '1000',
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    await set?.close();
  });

  it('killing the primary under announce load: the gateway answers again within failover time plus a few seconds', async () => {
    const url = gateway.announceUrl('http');
    const swarm = randomInfoHash();
    const seeders = Array.from({ length: 5 }, () => randomPeerId());
    for (const [i, peerId] of seeders.entries()) {
      await httpAnnounce(url, {
        infoHash: swarm,
        peerId,
        port: 20_000 + i,
        left: 0n,
        event: 'completed',
      });
    }
    const primary = await set.primary();
    // Acknowledged by both replicas before the fault: these must survive it.
    expect(Number(await primary.cli('WAIT', '2', '2000'))).toBe(2);

    const load = Array.from({ length: 16 }, () => randomInfoHash());
    const report = await killPrimaryUnderLoad(
      set,
      (i) =>
        httpAnnounce(url, {
          infoHash: load[i % load.length]!,
          peerId: randomPeerId(),
          port: 30_000 + (i % 30_000),
          left: 1000n,
        }).catch((err: unknown) => {
          throw Object.assign(new Error(String(err)), { code: codeOfFailure(err) });
        }),
      'through the gateway',
    );
    // The harness's sentinels declare the primary down after 1 s; election and
    // promotion add ~1-2 s, and the other sentinels' switch up to 2 s more
    // (~3.5 s unloaded); under load an election can fail and be retried.
    // Every failure was a coded "retry later" answer, none a hang or a broken
    // reply.
    expectRecovered(report, {
      recoveredWithinMs: sentinelRecoveryBoundMs(set),
      maxLatencyMs: 3000,
    });
    expect(gateway.alive()).toBe(true);

    const after = await httpAnnounce(url, {
      infoHash: swarm,
      peerId: randomPeerId(),
      port: 29_999,
      left: 10n,
      numWant: 50,
    });
    expect(after).toMatchObject({ seeders: 5, leechers: 1 });
    expect(after.peers).toHaveLength(5);
    const [scraped] = await httpScrape(gateway.scrapeUrl(), [swarm]);
    expect(scraped).toMatchObject({ complete: 5, incomplete: 1, downloaded: 5 });
  }, 240_000);
});
