// Changing a Redis ring's shard list at runtime. The gateway reads
// its config file again on SIGHUP; adding a shard affects only the swarms
// that now belong to it: their durable download counts move with them, their
// ephemeral peers come back with the next announce (docs/decisions.md
// "Storage"), and every other swarm is untouched.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRing, type RedisRing } from '@shoal/testing/redis';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import {
  httpAnnounce,
  httpScrape,
  randomInfoHash,
  randomPeerId,
} from '@shoal/testing/tracker-client';

describe('redis ring resharding on SIGHUP', () => {
  let ring: RedisRing;
  let dir: string;
  let file: string;
  let gateway: GatewayProcess;
  const shardList = (n: number): string =>
    ring.shards
      .slice(0, n)
      .map((s, i) => `  - s${i}=${s.address}`)
      .join('\n');
  const writeConfig = (n: number): Promise<void> =>
    writeFile(
      file,
      `STORAGE_DRIVER: redis\nREDIS_MODE: ring\nREDIS_PASSWORD: ${ring.shards[0]!.password ?? ''}\nREDIS_RING_SHARDS:\n${shardList(n)}\n`,
    );

  beforeAll(async () => {
    ring = await startRing(3);
    dir = await mkdtemp(join(tmpdir(), 'shoal-ring-'));
    file = join(dir, 'shoal.yaml');
    await writeConfig(2);
    gateway = await startGateway({ SHOAL_CONFIG_FILE: file });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    await ring?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('adding a shard moves only the swarms it now owns, with their download counts', async () => {
    const url = gateway.announceUrl('http');
    const swarms = Array.from({ length: 40 }, () => randomInfoHash());
    for (const [i, infoHash] of swarms.entries()) {
      await httpAnnounce(url, {
        infoHash,
        peerId: randomPeerId(),
        port: 10_000 + i,
        left: 0n,
        event: 'completed',
      });
    }
    expect(await ring.shards[2]!.cli('DBSIZE')).toBe('0');

    await writeConfig(3);
    process.kill(gateway.pid, 'SIGHUP');
    await expect
      .poll(() => gateway.stdout.some((l) => l.includes('"msg":"redis reconfigured"')), {
        timeout: 10_000,
      })
      .toBe(true);

    // Rendezvous hashing gives the new shard about a third of 40 swarms; what
    // arrived there is their download counters (one key per moved swarm).
    const movedKeys = Number(await ring.shards[2]!.cli('DBSIZE'));
    expect(movedKeys).toBeGreaterThan(0);
    expect(movedKeys).toBeLessThan(swarms.length);
    const counts = await httpScrape(gateway.scrapeUrl(), swarms);
    expect(counts).toHaveLength(swarms.length);
    for (const c of counts) expect(c.downloaded).toBe(1);
    // Exactly the moved swarms start without their peers; the rest kept theirs.
    expect(counts.filter((c) => c.complete === 0)).toHaveLength(movedKeys);
    expect(counts.filter((c) => c.complete === 1)).toHaveLength(swarms.length - movedKeys);

    // The peers' next announce restores the moved swarms.
    for (const [i, infoHash] of swarms.entries()) {
      await httpAnnounce(url, { infoHash, peerId: randomPeerId(), port: 10_000 + i, left: 0n });
    }
    for (const c of await httpScrape(gateway.scrapeUrl(), swarms)) {
      expect(c).toMatchObject({ complete: 1, incomplete: 0, downloaded: 1 });
    }
    expect(gateway.alive()).toBe(true);
  }, 60_000);

  it('a config that fails validation is refused and the running shards keep serving', async () => {
    await writeFile(file, 'STORAGE_DRIVER: redis\nREDIS_MODE: ring\nREDIS_RING_SHARDS: []\n');
    process.kill(gateway.pid, 'SIGHUP');
    await expect
      .poll(() => gateway.stdout.some((l) => l.includes('config reload refused')), {
        timeout: 10_000,
      })
      .toBe(true);
    const r = await httpAnnounce(gateway.announceUrl('http'), {
      infoHash: randomInfoHash(),
      peerId: randomPeerId(),
      port: 9999,
      left: 5n,
    });
    expect(r).toMatchObject({ seeders: 0, leechers: 1 });
  }, 30_000);
});
