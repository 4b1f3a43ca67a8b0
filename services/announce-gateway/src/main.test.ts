// Runs the real entry point the way `make run` does.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { announceQuery, bdict, hashOf } from '../test/support.ts';
import { LOOPBACK_ENV, spawnService, startService } from '@shoal/testing/launcher';

const serviceDir = fileURLToPath(new URL('..', import.meta.url));

describe('main.ts', () => {
  it('starts on PORT=0, logs one listening line, answers, and exits 0 on SIGTERM', async () => {
    const gateway = await startService({
      service: 'announce-gateway',
      cwd: serviceDir,
      env: LOOPBACK_ENV,
      // One worker per core (the default) takes 20 s and more to start at load average 30.
      timeoutMs: 120_000,
    });
    try {
      const listening = gateway.listening;
      expect(gateway.stdout.filter((l) => l.includes('"msg":"listening"'))).toHaveLength(1);
      expect(listening.udp).toBe(listening.http);
      expect(listening.announce).toContain(`udp://127.0.0.1:${listening.udp as number}/announce`);

      const res = await fetch(
        `http://127.0.0.1:${listening.http as number}/announce?${announceQuery({ infoHash: hashOf('main'), port: 1 })}`,
      );
      expect(bdict(Buffer.from(await res.arrayBuffer())).incomplete).toBe(1);
      expect((await fetch(`http://127.0.0.1:${listening.admin as number}/healthz`)).status).toBe(
        200,
      );
      expect(gateway.stderr.join('\n')).toContain(
        `http://127.0.0.1:${listening.http as number}/announce`,
      );

      expect(await gateway.stop()).toBe(0);
      // stdout is pino's JSON only; the line for humans above went to stderr.
      for (const line of gateway.stdout)
        expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    } finally {
      await gateway.kill();
    }
  }, 180_000);

  it('exits 1 listing every config problem', async () => {
    const child = spawnService({
      service: 'announce-gateway',
      cwd: serviceDir,
      env: { PORT: 'x', NUMWANT_MAX: '-1' },
    });
    const { code } = await child.exited;
    expect(code).toBe(1);
    const stderr = child.stderr.join('\n');
    expect(stderr).toMatch(/PORT:/);
    expect(stderr).toMatch(/NUMWANT_MAX:/);
  });
});
