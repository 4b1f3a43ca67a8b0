// The one storage-api client against a plain HTTP server: what it sends,
// and the one code each kind of failure gets.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageApiClient, type StorageApiClientError } from './client.ts';

const TOKEN = 'client-test-token-0123';

describe('StorageApiClient', () => {
  let server: Server;
  let base = '';
  const seen: Array<{
    url: string | undefined;
    headers: IncomingMessage['headers'];
    body: string;
  }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({ url: req.url, headers: req.headers, body });
        const json = (status: number, value: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
        };
        switch (req.url ?? '') {
          case '/prefix/v1/gc':
            return json(200, { peersRemoved: 2, swarmsRemoved: 1, durationMs: 3 });
          case '/prefix/v1/leases/gc%2Fleader':
            return json(503, { code: 'STORE_ERR_UNAVAILABLE', message: 'down' });
          case '/prefix/v1/policy':
            if (req.headers['if-none-match'] === '"7"') return res.writeHead(304).end();
            return json(200, { revision: '7' });
          case '/prefix/v1/stats':
            return res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway');
          default:
            // never answers: the timeout
            return undefined;
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const failure = (p: Promise<unknown>): Promise<StorageApiClientError> =>
    p.then(
      () => {
        throw new Error('resolved');
      },
      (err: StorageApiClientError) => err,
    );

  it('keeps the URL prefix, sends the token and its headers, and parses the contract bodies', async () => {
    const client = new StorageApiClient({
      url: base,
      token: TOKEN,
      // Every call but the last is answered at once; the last never is. The
      // timeout must outlast a loaded machine's answers (300 ms once timed
      // out POST /v1/gc at load 25), and only the last waits for it.
      timeoutMs: 5_000,
      headers: { 'x-shoal-client': 'worker-1' },
    });
    try {
      expect(await client.collectGarbage()).toEqual({
        peersRemoved: 2,
        swarmsRemoved: 1,
        durationMs: 3,
      });
      expect(seen.at(-1)?.headers).toMatchObject({
        authorization: `Bearer ${TOKEN}`,
        'x-shoal-client': 'worker-1',
        'content-type': 'application/json',
      });
      expect(await client.policy(undefined)).toEqual({ revision: '7' });
      expect(await client.policy('7')).toBeUndefined();

      const refused = await failure(client.acquireLease('gc/leader', 'w', 1000));
      expect(refused).toMatchObject({
        code: 'API_CLIENT_ERR_REFUSED',
        status: 503,
        body: { code: 'STORE_ERR_UNAVAILABLE', message: 'down' },
      });
      expect(JSON.parse(seen.at(-1)?.body ?? '')).toEqual({ holder: 'w', ttlMs: 1000 });
      // A proxy's page: refused, without an error body.
      const proxy = await failure(client.stats());
      expect(proxy).toMatchObject({ code: 'API_CLIENT_ERR_REFUSED', status: 502, body: undefined });
      expect(await failure(client.json('GET', '/v1/hangs'))).toMatchObject({
        code: 'API_CLIENT_ERR_TIMEOUT',
      });
    } finally {
      await client.close();
    }
  });

  it('says unreachable when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const client = new StorageApiClient({
      url: `http://127.0.0.1:${port}`,
      token: TOKEN,
      timeoutMs: 1000,
    });
    try {
      expect(await failure(client.stats())).toMatchObject({ code: 'API_CLIENT_ERR_UNREACHABLE' });
    } finally {
      await client.close();
    }
  });
});
