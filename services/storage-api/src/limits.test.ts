// docs/limits.md on storage-api's API port over real sockets: a body larger
// than MAX_BODY_BYTES is refused before it is read, a request without the
// token before its body is read, and a drip is cut by HTTP_REQUEST_TIMEOUT_MS.
// Bounds carry wide margins: the machine running this may be loaded.
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORAGE_RPC_CONTENT_TYPE } from '@shoal/protocol/storage-rpc';
import { buildStorageApi, type StorageApi } from './app.ts';
import { loadStorageApiConfig } from './config.ts';

const TOKEN = 'limits-token-0123456789abcdef';
const HOST = '127.0.0.1';
const MAX_BODY_BYTES = 64 << 10;
const HUGE_BODY_BYTES = 100 << 20;
const REQUEST_TIMEOUT_MS = 1000;
const MARGIN_MS = 4000;

interface Upload {
  /** Status line and headers of the answer, '' when the server closed without one. */
  head: string;
  body: string;
  /** Body bytes the client had handed to its socket when the answer (or the close) arrived. */
  sentWhenAnswered: number;
  /** True when the client wrote every byte (the server read the whole body). */
  sentAll: boolean;
}

/**
 * Streams `total` body bytes in 64 KiB pieces, stopping as soon as an answer
 * or a close arrives. The client never holds more than one piece, so memory
 * growth in this process is the server's.
 */
function upload(
  port: number,
  headers: Record<string, string>,
  total: number,
  chunked: boolean,
): Promise<Upload> {
  return new Promise((resolve, reject) => {
    const piece = Buffer.alloc(64 << 10, 0x41);
    const socket: Socket = connect(port, HOST);
    let sent = 0;
    let sentWhenAnswered: number | undefined;
    let received = Buffer.alloc(0);
    let finished = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer after ${sent} bytes`));
    }, 60_000);
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      resolve({
        head: end === -1 ? text : text.slice(0, end),
        body: end === -1 ? '' : text.slice(end + 4),
        sentWhenAnswered: sentWhenAnswered ?? sent,
        sentAll: sent >= total,
      });
    };
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.on('data', (d: Buffer) => {
      sentWhenAnswered ??= sent;
      received = Buffer.concat([received, d]);
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: *(\d+)/i.exec(text)?.[1];
      if (end !== -1 && length !== undefined && received.length >= end + 4 + Number(length))
        finish();
    });
    socket.on('connect', () => {
      const lines = [
        'POST /v1/batch HTTP/1.1',
        'Host: storage-api',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${total}`,
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      const pump = () => {
        while (!finished && sentWhenAnswered === undefined && sent < total) {
          const n = Math.min(piece.length, total - sent);
          const data = n === piece.length ? piece : piece.subarray(0, n);
          sent += n;
          const more = chunked
            ? socket.write(`${n.toString(16)}\r\n`) && socket.write(data) && socket.write('\r\n')
            : socket.write(data);
          if (!more) {
            socket.once('drain', pump);
            return;
          }
        }
        if (chunked && sent >= total && !finished) socket.write('0\r\n\r\n');
      };
      pump();
    });
  });
}

describe('storage-api API port limits', () => {
  let app: StorageApi;
  let port: number;
  beforeAll(async () => {
    app = buildStorageApi({
      config: loadStorageApiConfig({
        env: {
          HOST,
          PORT: '0',
          ADMIN_HOST: HOST,
          ADMIN_PORT: '0',
          STORAGE_API_TOKEN: TOKEN,
          MAX_BODY_BYTES: String(MAX_BODY_BYTES),
          HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        },
        argv: [],
      }),
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
    });
    port = (await app.listen()).port;
  });
  afterAll(() => app.close());

  const batchHeaders = {
    authorization: `Bearer ${TOKEN}`,
    'content-type': STORAGE_RPC_CONTENT_TYPE,
  };

  for (const chunked of [false, true]) {
    it(`refuses a 100 MB body (${chunked ? 'chunked' : 'Content-Length'}) with a coded 413 before reading it, memory staying bounded`, async () => {
      const before = process.memoryUsage();
      const answer = await upload(port, batchHeaders, HUGE_BODY_BYTES, chunked);
      const after = process.memoryUsage();
      expect(answer.head).toMatch(/^HTTP\/1\.1 413 /);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'RPC_ERR_TOO_LARGE' });
      // The answer came while the client was still sending: a few MB of socket buffers at most.
      expect(answer.sentAll).toBe(false);
      expect(answer.sentWhenAnswered).toBeLessThan(16 << 20);
      // Nothing near 100 MB was kept (generous: the heap and GC timing vary).
      expect(after.rss - before.rss).toBeLessThan(48 << 20);
      expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(32 << 20);
    }, 90_000);
  }

  it('refuses a 100 MB body without the token with a coded 401 before reading it', async () => {
    for (const headers of [
      { 'content-type': STORAGE_RPC_CONTENT_TYPE },
      { ...batchHeaders, authorization: 'Bearer wrong-token-0123456789' },
    ]) {
      const answer = await upload(port, headers, HUGE_BODY_BYTES, false);
      expect(answer.head).toMatch(/^HTTP\/1\.1 401 /);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'RPC_ERR_UNAUTHORIZED' });
      expect(answer.sentAll).toBe(false);
      expect(answer.sentWhenAnswered).toBeLessThan(16 << 20);
    }
  }, 90_000);

  it('cuts clients dripping a request within HTTP_REQUEST_TIMEOUT_MS plus a margin, serving the token holder meanwhile', async () => {
    const drips = await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<{
            socket: Socket;
            closedAfterMs: () => number | undefined;
            received: () => string;
          }>((resolve, reject) => {
            const openedAt = performance.now();
            let closedAt: number | undefined;
            let received = '';
            const socket = connect(port, HOST, () =>
              resolve({
                socket,
                closedAfterMs: () => (closedAt === undefined ? undefined : closedAt - openedAt),
                received: () => received,
              }),
            );
            socket.once('error', reject);
            socket.on('error', () => undefined);
            // Flowing, so the server's answer and close are seen when they arrive.
            socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
            socket.on('close', () => (closedAt = performance.now()));
          }),
      ),
    );
    for (const d of drips) d.socket.write('GET /v1/stats HTTP/1.1\r\nAuthorization: Bearer ');
    const drip = setInterval(() => {
      for (const d of drips) if (!d.socket.destroyed) d.socket.write('x');
    }, 200);
    try {
      const stats = await fetch(`http://${HOST}:${port}/v1/stats`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: AbortSignal.timeout(10_000),
      });
      expect(stats.status).toBe(200);
      const deadline = performance.now() + REQUEST_TIMEOUT_MS + 2 * MARGIN_MS;
      while (drips.some((d) => d.closedAfterMs() === undefined)) {
        if (performance.now() > deadline) throw new Error('dripping clients still open');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      clearInterval(drip);
      for (const d of drips) d.socket.destroy();
    }
    const lifetimes = drips.map((d) => d.closedAfterMs() ?? Infinity);
    expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    const inTime = lifetimes.filter((ms) => ms <= REQUEST_TIMEOUT_MS + MARGIN_MS).length;
    expect(inTime).toBeGreaterThanOrEqual(drips.length * 0.9);
    const told = drips.filter((d) => d.received().startsWith('HTTP/1.1 408 ')).length;
    expect(told).toBeGreaterThanOrEqual(drips.length * 0.9);
  }, 60_000);
});
