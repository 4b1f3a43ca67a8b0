// A stand-in storage-api for the remote client's unit tests: the real batch
// codec in front of a real memory store, plus switches for the failures the
// client must survive (down, slow, another protocol version, backend errors).
// The real service is exercised in remote.test.ts and tests/src/remote-*.
import Fastify, { type FastifyInstance } from 'fastify';
import {
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_PATH,
  decodeBatchRequest,
  encodeBatchResponse,
  type RpcOp,
  type RpcResult,
} from '@shoal/protocol';
import { createMemoryStore } from '@shoal/storage/memory';
import type { PeerStore } from '@shoal/storage';

export const FAKE_TOKEN = 'fake-storage-api-token-0123456789';

export interface FakeStorageApi {
  readonly url: string;
  readonly store: PeerStore;
  /** Ops per /v1/batch request received, in arrival order. */
  readonly batches: number[];
  /**
   * backend-down: every op answers STORE_ERR_UNAVAILABLE (a 200); http-500: a
   * storage-api bug on the request; http-503: storage-api says it cannot
   * serve; bad-request: a 400 refusal.
   */
  mode: 'ok' | 'version' | 'backend-down' | 'http-500' | 'http-503' | 'bad-request';
  /** Delay before answering a batch, in ms. */
  delayMs: number;
  /** Stops listening and drops kept-alive connections (a killed process). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

export async function startFakeStorageApi(): Promise<FakeStorageApi> {
  const store = createMemoryStore({ peerLifetimeSeconds: 1860 });
  let app: FastifyInstance;
  let port = 0;
  const fake: FakeStorageApi = {
    url: '',
    store,
    batches: [],
    mode: 'ok',
    delayMs: 0,
    stop: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
    start: async () => {
      app = build();
      await app.listen({ host: '127.0.0.1', port });
      const address = app.server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      port = address.port;
      (fake as { url: string }).url = `http://127.0.0.1:${port}`;
    },
  };

  async function answer(op: RpcOp): Promise<RpcResult> {
    if (fake.mode === 'backend-down') return { ok: false, code: 'STORE_ERR_UNAVAILABLE' };
    if (op.op === 'scrape')
      return { ok: true, op: 'scrape', counts: await store.scrape(op.infoHashes) };
    // The gateway's store tests send no WebSocket ops; storage-api's own tests cover them.
    if (op.op !== 'announce') return { ok: false, code: 'RPC_ERR_INTERNAL' };
    const r = await store.announce(op);
    return { ok: true, op: 'announce', ...r };
  }

  function build(): FastifyInstance {
    const server = Fastify({ logger: false });
    server.addContentTypeParser(
      STORAGE_RPC_CONTENT_TYPE,
      { parseAs: 'buffer' },
      (_req, body, done) => done(null, body),
    );
    server.post(STORAGE_RPC_PATH, async (request, reply) => {
      if (request.headers.authorization !== `Bearer ${FAKE_TOKEN}`)
        return reply.code(401).send({ code: 'RPC_ERR_UNAUTHORIZED', message: 'bad token' });
      if (fake.mode === 'version')
        return reply
          .code(400)
          .send({ code: 'RPC_ERR_VERSION', message: 'unsupported version', supported: [2] });
      if (fake.mode === 'http-500')
        return reply.code(500).send({ code: 'RPC_ERR_INTERNAL', message: 'boom' });
      if (fake.mode === 'http-503')
        return reply.code(503).send({ code: 'STORE_ERR_UNAVAILABLE', message: 'backend down' });
      if (fake.mode === 'bad-request')
        return reply.code(400).send({ code: 'RPC_ERR_BAD_BODY', message: 'malformed' });
      const ops = decodeBatchRequest(request.body as Buffer, {
        maxOps: 65_535,
        maxScrapeHashes: 255,
      });
      fake.batches.push(ops.length);
      if (fake.delayMs > 0) await new Promise((r) => setTimeout(r, fake.delayMs));
      const results = await Promise.all(ops.map(answer));
      return reply.type(STORAGE_RPC_CONTENT_TYPE).send(encodeBatchResponse(results, ops));
    });
    server.get('/v1/stats', async (request, reply) => {
      if (request.headers.authorization !== `Bearer ${FAKE_TOKEN}`)
        return reply.code(401).send({ code: 'RPC_ERR_UNAUTHORIZED', message: 'bad token' });
      return store.stats();
    });
    return server;
  }

  await fake.start();
  return fake;
}
