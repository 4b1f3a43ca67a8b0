// The storage-api process as operators run it: one "listening" log line with
// both ports, a config error naming every bad variable, and exit 0 on
// SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  STORAGE_RPC_CONTENT_TYPE,
  decodeBatchResponse,
  encodeBatchRequest,
  type RpcOp,
} from '@shoal/protocol/storage-rpc';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const TOKEN = 'main-token-0123456789abcdef';
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function start(env: Record<string, string>): {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
} {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  let err = '';
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { child, lines, stderr: () => err };
}

async function listening(lines: string[]): Promise<{ port: number; admin: number }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const line = lines.find((l) => l.includes('"msg":"listening"'));
    if (line !== undefined) return JSON.parse(line) as { port: number; admin: number };
    if (Date.now() > deadline) throw new Error(`no listening line:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('storage-api process', () => {
  it('logs its ports, serves, and exits 0 on SIGTERM', async () => {
    const { child, lines } = start({
      ...LOOPBACK_ENV,
      STORAGE_API_TOKEN: TOKEN,
    });
    const { port, admin } = await listening(lines);
    expect(port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${admin}/readyz`)).status).toBe(200);
    const ops: RpcOp[] = [{ op: 'scrape', infoHashes: [Buffer.alloc(20, 1)] }];
    const res = await fetch(`http://127.0.0.1:${port}/v1/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': STORAGE_RPC_CONTENT_TYPE },
      body: encodeBatchRequest(ops),
    });
    expect(decodeBatchResponse(Buffer.from(await res.arrayBuffer()), ops)).toEqual([
      { ok: true, op: 'scrape', counts: [{ seeders: 0, leechers: 0, downloaded: 0 }] },
    ]);
    // The token never reaches the logs.
    expect(lines.join('\n')).not.toContain(TOKEN);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });

  it('refuses to start with a bad config, naming every problem', async () => {
    const { child, stderr } = start({ ADMIN_PORT: 'x', PEER_STORE_DRIVER: 'sqlite' });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    for (const key of ['ADMIN_PORT', 'PEER_STORE_DRIVER', 'STORAGE_API_TOKEN'])
      expect(stderr()).toContain(key);
  });
});
