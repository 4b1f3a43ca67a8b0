// storage-api composition root (docs/conventions.md "Composition"): injected config,
// logger, registry and stores; nothing listens until listen(). Two fastify
// servers: the token-protected API (batch, KV, downloads, stats, gc, leases;
// contract §1-2; GET /v1/policy and the /v1/admin/* policy admin API of
// docs/policy.md) and the admin port (/healthz, /readyz, /metrics).
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { isProtocolError } from '@shoal/protocol';
import {
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_PATH,
  STORAGE_RPC_VERSION,
  STORAGE_RPC_VERSION_HEADER,
  decodeBatchRequest,
  encodeBatchResponse,
  peekBatchVersion,
  type RpcOp,
  type RpcResult,
} from '@shoal/protocol/storage-rpc';
import {
  ADMIN_PREFIX,
  createPolicyRepository,
  registerPolicyAdminRoutes,
  type PolicyAdminDeps,
} from '@shoal/policy';
import { bearerToken, presentedToken } from '@shoal/service/bearer';
import { buildAdminServer } from '@shoal/service/admin-server';
import { capConnections, fastifyLimits, type HttpLimits } from '@shoal/service/http-limits';
import {
  hasTopSwarms,
  isStoreError,
  StoreError,
  type PeerStore,
  type PingableDataStore,
} from '@shoal/storage';
import { createCompositeStore, type CompositeStore } from '@shoal/storage/composite';
import { runDoctor } from '@shoal/storage/doctor';
import { createMemoryLeaseLock, type LeaseLock } from '@shoal/storage/locks';
import { createMemoryStore, type MemoryStore } from '@shoal/storage/memory';
import type { StorageApiConfig } from './config.ts';
import { storeConfig } from './storage.ts';
import { ApiError, apiErrors, errorAnswer } from './errors.ts';
import { createApiMetrics, type Endpoint, type Operation } from './metrics.ts';

export interface StorageApiDeps {
  config: StorageApiConfig;
  logger: Logger;
  registry: Registry;
  /**
   * Where peers (and their download counts) live. The app never closes the
   * stores it is given (main.ts owns them). Omitted, with `data` and `locks`:
   * one in-process memory store, closed by close() (tests, metric inventories).
   */
  peers?: PeerStore;
  /** KV data; may be the same object as `peers` (all in one backend). */
  data?: PingableDataStore;
  /** Leases on the durable backend. */
  locks?: LeaseLock;
  /** Milliseconds since the epoch for policy data (passkey expiry, addedAt); default Date.now. */
  clock?: () => number;
  /** `shoalctl doctor`'s checks; default: runDoctor (@shoal/storage/doctor) on the configured backends. */
  doctor?: PolicyAdminDeps['doctor'];
}

export interface StorageApi {
  api: FastifyInstance;
  admin: FastifyInstance;
  listen(): Promise<{ port: number; adminPort: number }>;
  /** Stops accepting, lets in-flight requests finish, stops the stats timer. */
  close(): Promise<void>;
}

const SUPPORTED_VERSIONS = [STORAGE_RPC_VERSION];
const HEX_HASH = /^[0-9a-fA-F]{40}$/;
/** KV contexts and keys are path segments: short, printable, no slash. */
const KV_NAME = /^[\w.:@+=-]{1,256}$/;
const KV_VALUE_MAX = 1 << 20;
const DOWNLOADS_MAX_HASHES = 1000;
const READY_TIMEOUT_MS = 2000;

declare module 'fastify' {
  interface FastifyContextConfig {
    endpoint?: Endpoint;
  }
}

/** The route GET /v1/policy answers (gateway or admin token). */
const POLICY_PATH = '/v1/policy';

/** RFC 9110 13.1.2: If-None-Match is `*` or a list of entity tags, compared weakly. */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || (t.startsWith('W/') ? t.slice(2) : t) === etag;
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError('STORE_ERR_TIMEOUT', `${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function codeOf(err: unknown): string {
  return isStoreError(err) ? err.code : 'RPC_ERR_INTERNAL';
}

function kvName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !KV_NAME.test(value)) {
    throw new ApiError('RPC_ERR_BAD_BODY', `${what} must be 1-256 of [A-Za-z0-9_.:@+=-]`);
  }
  return value;
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('RPC_ERR_BAD_BODY', 'body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

export function buildStorageApi(deps: StorageApiDeps): StorageApi {
  const { config, logger, registry } = deps;
  const log = logger.child({ module: 'storage-api' });
  let owned: MemoryStore | undefined;
  const fallback = (): MemoryStore =>
    (owned ??= createMemoryStore({ peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS }));
  const store: CompositeStore = createCompositeStore({
    peers: deps.peers ?? fallback(),
    data: deps.data ?? fallback(),
    dataDriver: deps.data === undefined ? 'memory' : config.DATA_STORE_DRIVER,
    // Two drivers of one kind are one backend (openStores opens it once).
    downloadsApart: config.PEER_STORE_DRIVER !== config.DATA_STORE_DRIVER,
    onError: (err, what) => {
      metrics.error(config.DATA_STORE_DRIVER, 'downloads', codeOf(err));
      log.warn(
        { err, what },
        'download counters: data backend failed; retried with the next batch',
      );
    },
  });
  const locks = deps.locks ?? createMemoryLeaseLock();
  const metrics = createApiMetrics(registry, { peers: store.driver, data: store.dataDriver });
  const peerDriver = store.driver;
  const dataDriver = store.dataDriver;
  const gatewayToken = bearerToken(config.STORAGE_API_TOKEN);
  const adminToken =
    config.STORAGE_API_ADMIN_TOKEN === undefined
      ? undefined
      : bearerToken(config.STORAGE_API_ADMIN_TOKEN);
  const clock = deps.clock ?? Date.now;
  const policy = createPolicyRepository(store, clock);
  const limits = { maxOps: config.BATCH_MAX_OPS, maxScrapeHashes: config.BATCH_MAX_SCRAPE_HASHES };
  let closing = false;
  let statsTimer: NodeJS.Timeout | undefined;

  /** Runs one store call, timing it and counting its failure under a bounded code. */
  async function timed<T>(
    driver: string,
    operation: Operation,
    call: () => Promise<T>,
  ): Promise<T> {
    const start = performance.now();
    try {
      return await call();
    } catch (err) {
      metrics.error(driver, operation, codeOf(err));
      if (!isStoreError(err)) log.error({ err, operation }, 'store call failed unexpectedly');
      throw err;
    } finally {
      metrics.observe(driver, operation, start);
    }
  }

  // docs/limits.md: what one slow or hostile client can hold.
  const httpLimits: HttpLimits = {
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.HTTP_KEEPALIVE_TIMEOUT_SECONDS * 1000,
    maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
    maxConnections: config.HTTP_MAX_CONNECTIONS,
  };
  // A caller's X-Request-Id (e.g. a proxy's) becomes request.id in error lines.
  const api = Fastify({
    ...fastifyLimits(httpLimits),
    logger: false,
    bodyLimit: config.MAX_BODY_BYTES,
    requestIdHeader: 'x-request-id',
  });
  capConnections(api.server, httpLimits);
  // The batch body is read as bytes; fastify enforces bodyLimit before handing it over.
  api.addContentTypeParser(STORAGE_RPC_CONTENT_TYPE, { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });

  // async (no await): a throw becomes the request's error, answered by the error handler.
  // eslint-disable-next-line @typescript-eslint/require-await
  api.addHook('onRequest', async (request) => {
    if (closing) throw new ApiError('RPC_ERR_SHUTTING_DOWN');
    const presented = presentedToken(request.headers.authorization);
    // The route's pattern; an unknown path (404 after auth) by its own path.
    const route = request.routeOptions.url ?? request.url.split('?')[0] ?? '';
    const isAdmin = adminToken?.matches(presented) === true;
    if (route.startsWith(`${ADMIN_PREFIX}/`)) {
      // The gateways' token never opens the admin API (docs/policy.md).
      if (adminToken === undefined) throw new ApiError('RPC_ERR_ADMIN_DISABLED');
      if (!isAdmin) throw new ApiError('RPC_ERR_UNAUTHORIZED');
      return;
    }
    if (gatewayToken.matches(presented) || (route === POLICY_PATH && isAdmin)) return;
    throw new ApiError('RPC_ERR_UNAUTHORIZED');
  });
  api.addHook('onResponse', async (request, reply) => {
    const endpoint =
      request.routeOptions.config.endpoint ??
      ((request.routeOptions.url ?? '').startsWith(`${ADMIN_PREFIX}/`) ? 'admin' : 'other');
    metrics.request(endpoint, reply.statusCode);
  });
  api.setNotFoundHandler(async (_request, reply) => {
    const err = new ApiError('RPC_ERR_NOT_FOUND');
    return reply.code(err.httpStatus).send({ code: err.code, message: err.message });
  });
  api.setErrorHandler(async (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    let err = error;
    const fastifyCode = (error as { code?: unknown }).code;
    // fastify's own refusals, mapped onto the catalog.
    if (fastifyCode === 'FST_ERR_CTP_BODY_TOO_LARGE')
      err = new ApiError('RPC_ERR_TOO_LARGE', `at most ${config.MAX_BODY_BYTES} bytes`);
    else if (fastifyCode === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      err = new ApiError('RPC_ERR_BAD_CONTENT_TYPE');
    else if (typeof fastifyCode === 'string' && fastifyCode.startsWith('FST_ERR_CTP_'))
      err = new ApiError('RPC_ERR_BAD_BODY', 'unparseable body');
    else if (typeof fastifyCode === 'string' && fastifyCode.startsWith('FST_ERR_')) {
      // Any other refusal fastify makes before a handler runs (bad URL, ...) is the caller's.
      const status = (error as { statusCode?: unknown }).statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500)
        err = new ApiError('RPC_ERR_BAD_BODY', 'malformed request');
    }
    const answer = errorAnswer(err);
    if (answer.status >= 500 && !isStoreError(err))
      log.error(
        { err: error, code: answer.body.code, reqId: request.id, url: request.url },
        'request failed',
      );
    return reply.code(answer.status).send(answer.body);
  });

  api.post(STORAGE_RPC_PATH, { config: { endpoint: 'batch' } }, async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body))
      throw new ApiError('RPC_ERR_BAD_CONTENT_TYPE', STORAGE_RPC_CONTENT_TYPE);
    const header = request.headers[STORAGE_RPC_VERSION_HEADER];
    const version = header === undefined ? peekBatchVersion(body) : Number(header);
    if (version !== undefined && !SUPPORTED_VERSIONS.includes(version)) {
      return reply.code(apiErrors.RPC_ERR_VERSION.httpStatus).send({
        code: 'RPC_ERR_VERSION',
        message: `${apiErrors.RPC_ERR_VERSION.message}: supported ${SUPPORTED_VERSIONS.join(', ')}`,
        supported: SUPPORTED_VERSIONS,
      });
    }
    let ops: RpcOp[];
    try {
      ops = decodeBatchRequest(body, limits);
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      if (
        err.code === 'PROTO_ERR_RPC_TOO_MANY_OPS' ||
        err.code === 'PROTO_ERR_RPC_TOO_MANY_HASHES'
      ) {
        throw new ApiError('RPC_ERR_TOO_LARGE', err.message);
      }
      if (err.code === 'PROTO_ERR_RPC_VERSION') {
        return reply.code(400).send({
          code: 'RPC_ERR_VERSION',
          message: apiErrors.RPC_ERR_VERSION.message,
          supported: SUPPORTED_VERSIONS,
        });
      }
      throw new ApiError('RPC_ERR_BAD_BODY', err.code);
    }
    metrics.batchOps(ops.length);
    // Every op runs at once and fails alone: one bad swarm never fails the batch.
    const outcomes = await store.batch(ops, {
      onOp: (operation, startMs, err) => {
        metrics.observe(peerDriver, operation, startMs);
        if (err !== undefined) {
          metrics.error(peerDriver, operation, codeOf(err));
          if (!isStoreError(err)) log.error({ err, operation }, 'store call failed unexpectedly');
        }
      },
    });
    const results = outcomes.map((o, i): RpcResult => {
      if (!o.ok) return { ok: false, code: codeOf(o.error) };
      if (o.op === 'scrape') return { ok: true, op: 'scrape', counts: o.counts };
      const r = o.result;
      const op = ops[i];
      return {
        ok: true,
        op: 'announce',
        seeders: r.seeders,
        leechers: r.leechers,
        downloaded: r.downloaded,
        peers: r.peers,
        // A store that keeps no peer ids (Redis by default) answers undefined:
        // that travels as "no ids" and the gateway writes peers without `peer id`.
        peerIds: op?.op === 'announce' && op.withPeerIds ? r.peerIds : undefined,
      };
    });
    reply.header('content-type', STORAGE_RPC_CONTENT_TYPE);
    reply.header(STORAGE_RPC_VERSION_HEADER, String(STORAGE_RPC_VERSION));
    // A store answer the format cannot carry is that op's coded error, never
    // the batch's (docs/storage-api.md "Errors per op").
    return reply.send(
      encodeBatchResponse(results, ops, {
        onInvalid: (i, err) => {
          const operation = ops[i]?.op ?? 'announce';
          metrics.error(peerDriver, operation, err.code);
          log.error(
            { err, code: err.code, operation },
            'store answer does not fit the batch format',
          );
        },
      }),
    );
  });

  const kv = { config: { endpoint: 'kv' as const } };
  api.get('/v1/kv/:context', kv, async (request) => {
    const { context } = request.params as Record<string, unknown>;
    const entries = await timed(dataDriver, 'kv_list', () =>
      store.list(kvName(context, 'context')),
    );
    return { entries };
  });
  api.get('/v1/kv/:context/:key', kv, async (request) => {
    const params = request.params as Record<string, unknown>;
    const context = kvName(params.context, 'context');
    const key = kvName(params.key, 'key');
    const value = await timed(dataDriver, 'kv_get', () => store.get(context, key));
    if (value === undefined) throw new ApiError('KV_ERR_NOT_FOUND');
    return { value };
  });
  api.put('/v1/kv/:context/:key', kv, async (request) => {
    const params = request.params as Record<string, unknown>;
    const context = kvName(params.context, 'context');
    const key = kvName(params.key, 'key');
    const { value } = objectBody(request.body);
    if (typeof value !== 'string' || value.length > KV_VALUE_MAX) {
      throw new ApiError(
        'RPC_ERR_BAD_BODY',
        `value must be a string of at most ${KV_VALUE_MAX} characters`,
      );
    }
    await timed(dataDriver, 'kv_put', () => store.put(context, key, value));
    return { ok: true };
  });
  api.delete('/v1/kv/:context/:key', kv, async (request) => {
    const params = request.params as Record<string, unknown>;
    const context = kvName(params.context, 'context');
    const key = kvName(params.key, 'key');
    const existed = await timed(dataDriver, 'kv_delete', () => store.delete(context, key));
    return { existed };
  });

  api.get('/v1/downloads', { config: { endpoint: 'downloads' } }, async (request) => {
    const raw = (request.query as Record<string, unknown>).info_hash;
    const list = raw === undefined ? [] : Array.isArray(raw) ? (raw as unknown[]) : [raw];
    if (list.length === 0) throw new ApiError('RPC_ERR_BAD_BODY', 'info_hash is required');
    if (list.length > DOWNLOADS_MAX_HASHES) {
      throw new ApiError('RPC_ERR_TOO_LARGE', `at most ${DOWNLOADS_MAX_HASHES} info_hash`);
    }
    const hexes = list.map((h) => {
      if (typeof h !== 'string' || !HEX_HASH.test(h)) {
        throw new ApiError('RPC_ERR_BAD_BODY', 'info_hash must be 40 hex digits');
      }
      return h.toLowerCase();
    });
    const counts = await timed(store.downloadsApart ? dataDriver : peerDriver, 'downloads', () =>
      store.downloads(hexes.map((h) => Buffer.from(h, 'hex'))),
    );
    const downloads: Record<string, number> = {};
    hexes.forEach((h, i) => {
      downloads[h] = counts[i] ?? 0;
    });
    return { downloads };
  });

  api.get('/v1/stats', { config: { endpoint: 'stats' } }, async () => {
    const stats = await timed(peerDriver, 'stats', () => store.stats());
    metrics.swarm(stats);
    return stats;
  });

  api.post('/v1/gc', { config: { endpoint: 'gc' } }, async () => {
    const start = performance.now();
    const result = await timed(peerDriver, 'gc', () => store.collectGarbage());
    const durationMs = Math.round(performance.now() - start);
    log.info({ ...result, durationMs }, 'garbage collected');
    return { ...result, durationMs };
  });

  const leases = { config: { endpoint: 'leases' as const } };
  api.post('/v1/leases/:name', leases, async (request) => {
    const { name } = request.params as Record<string, string>;
    const { holder, ttlMs } = objectBody(request.body);
    if (typeof holder !== 'string' || typeof ttlMs !== 'number') {
      throw new ApiError('RPC_ERR_BAD_BODY', 'body must be { holder: string, ttlMs: number }');
    }
    return timed(dataDriver, 'lease', () => locks.acquire(name ?? '', holder, ttlMs));
  });
  api.delete('/v1/leases/:name', leases, async (request) => {
    const { name } = request.params as Record<string, string>;
    const { holder } = objectBody(request.body);
    if (typeof holder !== 'string')
      throw new ApiError('RPC_ERR_BAD_BODY', 'body must be { holder: string }');
    const released = await timed(dataDriver, 'lease', () => locks.release(name ?? '', holder));
    return { released };
  });

  // Gateways poll this every POLICY_REFRESH_SECONDS: one revision read, and
  // the lists only when the revision moved (docs/policy.md).
  api.get(POLICY_PATH, { config: { endpoint: 'policy' } }, async (request, reply) => {
    const revision = await timed(dataDriver, 'kv_get', () => policy.revision());
    const header = request.headers['if-none-match'];
    if (noneMatch(header, `"${revision}"`)) {
      reply.header('etag', `"${revision}"`);
      return reply.code(304).send();
    }
    const snapshot = await timed(dataDriver, 'kv_list', () => policy.snapshot());
    reply.header('etag', `"${snapshot.revision}"`);
    return snapshot;
  });

  const top = hasTopSwarms(store) ? store.topSwarms.bind(store) : undefined;
  registerPolicyAdminRoutes(api, {
    repo: policy,
    clock,
    stats: async () => {
      const stats = await timed(peerDriver, 'stats', () => store.stats());
      metrics.swarm(stats);
      return stats;
    },
    ...(top === undefined
      ? {}
      : {
          // Live peers from the peer backend, downloads as /v1/downloads reads them.
          top: {
            swarms: (limit: number) => timed(peerDriver, 'stats', () => top(limit)),
            downloads: (infoHashes: Buffer[]) =>
              timed(store.downloadsApart ? dataDriver : peerDriver, 'downloads', () =>
                store.downloads(infoHashes),
              ),
          },
        }),
    doctor:
      deps.doctor ??
      (async () => ({
        checks: await runDoctor({ store: storeConfig(config), clock }),
      })),
  });

  // 200 only while both backends answer a ping (docs/storage-api.md).
  const admin = buildAdminServer({
    registry,
    ready: async () => {
      const health = await withTimeout(store.health(), READY_TIMEOUT_MS).catch(() => ({
        peers: { driver: peerDriver, ok: false, code: 'STORE_ERR_TIMEOUT' },
        data: { driver: dataDriver, ok: false, code: 'STORE_ERR_TIMEOUT' },
      }));
      const checks = { peers: health.peers, data: health.data };
      const failed = [health.peers, health.data].find((c) => !c.ok);
      if (failed === undefined) return { status: 'ready', checks };
      const code = failed.code ?? 'STORE_ERR_UNAVAILABLE';
      return { status: 'not ready', code, message: `${failed.driver} store: ${code}`, checks };
    },
  });

  function refreshStats(): void {
    store.stats().then(
      (stats) => metrics.swarm(stats),
      (err: unknown) => {
        metrics.error(peerDriver, 'stats', codeOf(err));
        log.warn({ err }, 'swarm statistics unavailable');
      },
    );
  }

  return {
    api,
    admin: admin.app,
    async listen() {
      await api.listen({ port: config.PORT, host: config.HOST });
      const adminPort = await admin.listen(config.ADMIN_HOST, config.ADMIN_PORT);
      const port = portOf(api);
      admin.serving();
      refreshStats();
      statsTimer = setInterval(refreshStats, config.STATS_INTERVAL_SECONDS * 1000);
      statsTimer.unref();
      return { port, adminPort };
    },
    async close() {
      if (closing) return;
      closing = true;
      admin.stopping();
      clearInterval(statsTimer);
      // fastify's close waits for requests in flight and drops idle keep-alive sockets.
      await api.close();
      await admin.close();
      if (deps.locks === undefined) await locks.close();
      await owned?.close();
    },
  };
}

function portOf(server: FastifyInstance): number {
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no port');
  return address.port;
}
