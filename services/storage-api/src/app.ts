// storage-api composition root (docs/conventions.md "Composition"): injected config,
// logger, registry and stores; nothing listens until listen(). Two fastify
// servers: the token-protected API, whose routes are plugins by group in
// routes/ (batch; KV, downloads, stats; gc and leases; GET /v1/policy and the
// /v1/admin/* policy admin API of docs/policy.md) on the paths of
// @shoal/storage-api-contract, and the admin port (/healthz, /readyz, /metrics).
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createPolicyRepository, type PolicyAdminDeps } from '@shoal/policy';
import { bearerToken, presentedToken } from '@shoal/service/bearer';
import { buildAdminServer } from '@shoal/service/admin-server';
import { capConnections, fastifyLimits, type HttpLimits } from '@shoal/service/http-limits';
import { isGatewayId } from '@shoal/protocol/storage-rpc';
import { isStoreError, StoreError } from '@shoal/storage';
import { ROUTES, STORAGE_RPC_CONTENT_TYPE } from '@shoal/storage-api-contract';
import {
  createCompositeStore,
  type CompositeStore,
  type CompositeStoreParts,
} from '@shoal/storage/composite';
import { runDoctor } from '@shoal/storage/doctor';
import { createMemoryLeaseLock, type LeaseLock } from '@shoal/storage/locks';
import { createMemoryStore, type MemoryStore } from '@shoal/storage/memory';
import type { StorageApiConfig } from './config.ts';
import { storeConfig } from './storage.ts';
import { ApiError, errorAnswer } from './errors.ts';
import { createApiMetrics } from './metrics.ts';
import { batchRoutes } from './routes/batch.ts';
import { codeOf, createTimed, type RouteContext } from './routes/context.ts';
import { dataRoutes } from './routes/data.ts';
import { gcRoutes } from './routes/gc.ts';
import { policyRoutes } from './routes/policy.ts';
import {
  RelayStreams,
  createRelayStreamMetrics,
  openWsBackend,
  type WsBackend,
} from './ws-relay.ts';

export interface StorageApiDeps {
  config: StorageApiConfig;
  logger: Logger;
  registry: Registry;
  /**
   * Peers, KV data and durable download counts: the composite store that
   * openStore opens from config (./storage.ts). The app never closes the
   * stores it is given (main.ts owns them). Omitted, with `locks`: one
   * in-process memory store, closed by close() (tests, metric inventories).
   */
  store?: CompositeStore;
  /** Leases on the durable backend. */
  locks?: LeaseLock;
  /** Milliseconds since the epoch for policy data (passkey expiry, addedAt); default Date.now. */
  clock?: () => number;
  /** `shoalctl doctor`'s checks; default: runDoctor (@shoal/storage/doctor) on the configured backends. */
  doctor?: PolicyAdminDeps['doctor'];
  /**
   * The gateways' WebSocket swarms and the relay between replicas
   * (./ws-relay.ts openWsBackend, which main.ts opens and closes); default:
   * in this process, closed by close().
   */
  ws?: WsBackend;
}

export interface StorageApi {
  api: FastifyInstance;
  admin: FastifyInstance;
  listen(): Promise<{ port: number; adminPort: number }>;
  /** Stops accepting, lets in-flight requests finish, stops the stats timer. */
  close(): Promise<void>;
  /** Counts and logs a download-counter write or read of the store that failed (openStores' `onDownloadsError`). */
  downloadsFailed: NonNullable<CompositeStoreParts['onError']>;
}

const READY_TIMEOUT_MS = 2000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError('STORE_ERR_TIMEOUT', `${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function buildStorageApi(deps: StorageApiDeps): StorageApi {
  const { config, logger, registry } = deps;
  const log = logger.child({ module: 'storage-api' });
  let owned: MemoryStore | undefined;
  const downloadsFailed: StorageApi['downloadsFailed'] = (err, what) => {
    metrics.error(store.dataDriver, 'downloads', codeOf(err));
    log.warn({ err, what }, 'download counters: data backend failed; retried with the next batch');
  };
  const ownStore = (): CompositeStore => {
    owned = createMemoryStore({ peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS });
    return createCompositeStore({
      peers: owned,
      data: owned,
      dataDriver: owned.driver,
      onError: downloadsFailed,
    });
  };
  const store = deps.store ?? ownStore();
  const locks = deps.locks ?? createMemoryLeaseLock();
  const ws = deps.ws ?? openWsBackend({ ...config, PEER_STORE_DRIVER: 'memory' }, logger);
  const metrics = createApiMetrics(registry, {
    peers: store.driver,
    data: store.dataDriver,
    ws: ws.swarms.driver,
  });
  const relayStreams = new RelayStreams({
    replicas: ws.replicas,
    maxBufferedBytes: config.WS_RELAY_MAX_BUFFERED_BYTES,
    pingIntervalMs: config.WS_RELAY_PING_INTERVAL_SECONDS * 1000,
    metrics: createRelayStreamMetrics(registry),
    logger,
  });
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

  const timed = createTimed(metrics, log);

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
    if (route.startsWith(`${ROUTES.adminPrefix}/`)) {
      // The gateways' token never opens the admin API (docs/policy.md).
      if (adminToken === undefined) throw new ApiError('RPC_ERR_ADMIN_DISABLED');
      if (!isAdmin) throw new ApiError('RPC_ERR_UNAUTHORIZED');
      return;
    }
    if (gatewayToken.matches(presented) || (route === ROUTES.policy && isAdmin)) return;
    throw new ApiError('RPC_ERR_UNAUTHORIZED');
  });
  api.addHook('onResponse', async (request, reply) => {
    const endpoint =
      request.routeOptions.config.endpoint ??
      ((request.routeOptions.url ?? '').startsWith(`${ROUTES.adminPrefix}/`) ? 'admin' : 'other');
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

  const ctx: RouteContext = { store, locks, metrics, log, peerDriver, dataDriver, timed };
  // docs/webtorrent.md "The split topology": a gateway's relay stream, GET
  // /v1/ws-relay/<gateway id> upgraded to a WebSocket, with the gateways' token.
  api.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    const prefix = ROUTES.wsRelayPrefix;
    const gateway = path.startsWith(prefix) ? path.slice(prefix.length) : '';
    let refusal: ApiError | undefined;
    if (closing) refusal = new ApiError('RPC_ERR_SHUTTING_DOWN');
    else if (!gatewayToken.matches(presentedToken(request.headers.authorization)))
      refusal = new ApiError('RPC_ERR_UNAUTHORIZED');
    else if (!isGatewayId(gateway)) refusal = new ApiError('RPC_ERR_NOT_FOUND');
    if (refusal === undefined) {
      relayStreams.upgrade(request, socket, head, gateway);
      metrics.request('ws_relay', 101);
      return;
    }
    metrics.request('ws_relay', refusal.httpStatus);
    const body = JSON.stringify({ code: refusal.code, message: refusal.message });
    socket.end(
      `HTTP/1.1 ${refusal.httpStatus} ${STATUS_CODES[refusal.httpStatus] ?? ''}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });

  void api.register(batchRoutes, {
    ...ctx,
    ws: ws.swarms,
    limits,
    lifetime: {
      minSeconds: config.PEER_LIFETIME_SECONDS,
      maxSeconds: config.PEER_LIFETIME_MAX_SECONDS,
    },
    load: {
      batchTargetMs: config.LOAD_BATCH_TARGET_MS,
      queueTargetOps: config.LOAD_QUEUE_TARGET_OPS,
    },
  });
  void api.register(dataRoutes, ctx);
  void api.register(gcRoutes, ctx);
  void api.register(policyRoutes, {
    ...ctx,
    policy,
    clock,
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
      // Upgraded sockets would hold the server's close: the streams end first.
      await relayStreams.close();
      // fastify's close waits for requests in flight and drops idle keep-alive sockets.
      await api.close();
      await admin.close();
      if (deps.locks === undefined) await locks.close();
      await owned?.close();
      if (deps.ws === undefined) await ws.close();
    },
    downloadsFailed,
  };
}

function portOf(server: FastifyInstance): number {
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no port');
  return address.port;
}
