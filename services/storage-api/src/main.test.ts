// The storage-api process as operators run it: one "listening" log line with
// both ports, a config error naming every bad variable, and exit 0 on
// SIGTERM.
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  STORAGE_RPC_CONTENT_TYPE,
  decodeBatchResponse,
  encodeBatchRequest,
  type RpcOp,
} from '@shoal/protocol/storage-rpc';
import { LOOPBACK_ENV, spawnService, startService } from '@shoal/testing/launcher';

const TOKEN = 'main-token-0123456789abcdef';

describe('storage-api process', () => {
  it('logs its ports, serves, and exits 0 on SIGTERM', async () => {
    const api = await startService({
      service: 'storage-api',
      env: { ...LOOPBACK_ENV, STORAGE_API_TOKEN: TOKEN },
      timeoutMs: 15_000,
    });
    onTestFinished(() => api.kill());
    const { port, admin } = api.listening as { port: number; admin: number };
    expect(port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${admin}/readyz`)).status).toBe(200);
    const ops: RpcOp[] = [{ op: 'scrape', infoHashes: [Buffer.alloc(20, 1)] }];
    const res = await fetch(`http://127.0.0.1:${port}/v1/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': STORAGE_RPC_CONTENT_TYPE },
      body: encodeBatchRequest(ops),
    });
    expect(decodeBatchResponse(Buffer.from(await res.arrayBuffer()), ops)).toEqual([
      {
        ok: true,
        op: 'scrape',
        counts: [{ seeders: 0, leechers: 0, downloaded: 0, partialSeeds: 0 }],
      },
    ]);
    // The token never reaches the logs.
    expect(api.stdout.join('\n')).not.toContain(TOKEN);
    expect(await api.stop()).toBe(0);
  });

  it('refuses to start with a bad config, naming every problem', async () => {
    const api = spawnService({
      service: 'storage-api',
      env: { ADMIN_PORT: 'x', PEER_STORE_DRIVER: 'sqlite' },
    });
    const { code } = await api.exited;
    expect(code).toBe(1);
    for (const key of ['ADMIN_PORT', 'PEER_STORE_DRIVER', 'STORAGE_API_TOKEN'])
      expect(api.stderr.join('\n')).toContain(key);
  });
});
