// Runs the real entry point the way `make run` does.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { announceQuery, bdict, hashOf } from '../test/support.ts';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';

const serviceDir = fileURLToPath(new URL('..', import.meta.url));

describe('main.ts', () => {
  it('starts on PORT=0, logs one listening line, answers, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', 'src/main.ts'],
      {
        cwd: serviceDir,
        env: {
          PATH: process.env.PATH,
          ...LOOPBACK_ENV,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry.msg === 'listening') resolve(entry);
        });
        void exited.then((code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
      });
      expect(listening.udp).toBe(listening.http);
      expect(listening.announce).toContain(`udp://127.0.0.1:${listening.udp as number}/announce`);

      const res = await fetch(
        `http://127.0.0.1:${listening.http as number}/announce?${announceQuery({ infoHash: hashOf('main'), port: 1 })}`,
      );
      expect(bdict(Buffer.from(await res.arrayBuffer())).incomplete).toBe(1);
      expect((await fetch(`http://127.0.0.1:${listening.admin as number}/healthz`)).status).toBe(
        200,
      );
      expect(stderr).toContain(`http://127.0.0.1:${listening.http as number}/announce`);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('exits 1 listing every config problem', async () => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', 'src/main.ts'],
      {
        cwd: serviceDir,
        env: { PATH: process.env.PATH, PORT: 'x', NUMWANT_MAX: '-1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT:/);
    expect(stderr).toMatch(/NUMWANT_MAX:/);
  });
});
