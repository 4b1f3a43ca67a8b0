// Composition root of one gateway (docs/conventions.md "Composition"): everything it
// uses arrives as an argument, nothing listens until listen(), and only
// main.ts handles signals, so a test can run two gateways in one process.
import { randomBytes } from 'node:crypto';
import { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ConnectionIdCodec } from '@shoal/protocol';
import { policyErrors } from '@shoal/policy';
import type { Readiness } from '@shoal/service/admin-server';
import { fullScrapeOf, hasRateCounters, isStoreError } from '@shoal/storage';
import { buildAdmin, policyAdminFor } from './admin.ts';
import { createClientAddressResolver } from './client-address.ts';
import { scrapeRequestBytes, type GatewayConfig } from './config.ts';
import { buildTrackerHttp } from './http.ts';
import { createLoadControl, type LoadControl, type LoadSources } from './load/control.ts';
import { createGatewayMetrics } from './metrics.ts';
import { createPolicyCache, type PolicyCache } from './policy/cache.ts';
import { policySourceFor, type PolicySource } from './policy/source.ts';
import { createLinkLearner, type LinkLearner } from './policy/links.ts';
import { isRemoteStore } from './remote/store.ts';
import { createAbuseControl, type AbuseControl } from './policy/abuse.ts';
import {
  createSharedLimit,
  createSharedLimitMetrics,
  type SharedLimit,
} from './policy/shared-limit.ts';
import type { GatewayStorage } from './storage.ts';
import { Tracker } from './tracker/core.ts';
import { abuseBans, buildSteps, policyNeeds } from './tracker/steps.ts';
import { createTlsMetrics, readTlsMaterial, TlsReloader } from './tls.ts';
import { createFullScrapeMetrics, FullScrapeCache } from './full-scrape.ts';
import { UdpTracker } from './udp.ts';
import { loadUdpBatch, type UdpBatchAddon } from './udp-batch.ts';
import { WsFrontend } from './websocket/frontend.ts';
import { createWsMetrics } from './websocket/metrics.ts';
import { listenTcp } from './workers/ports.ts';
import { LocalRelay, MemoryWsSwarms, type WsRelay, type WsSwarmStore } from '@shoal/storage/ws';

export interface GatewayDeps {
  config: GatewayConfig;
  logger: Logger;
  registry: Registry;
  storage: GatewayStorage;
  /** Milliseconds since the epoch; tests move it to age connection ids, passkeys and rate limits. */
  clock?: () => number;
  /**
   * Where the approval lists and passkeys come from when a list or passkey
   * step is on; default: GET /v1/policy for the remote driver, the store's
   * own KV for the embedded ones. The gateway closes it.
   */
  policySource?: PolicySource;
  /**
   * The UDP connection id secret when UDP_CONNECTION_ID_SECRET is unset: the
   * workers of one process share the one their main thread drew
   * (docs/workers.md). Default: a random one, with a warning.
   */
  connectionIdSecret?: Buffer;
  /** false in a worker thread: the main thread publishes the process metrics (docs/workers.md "Metrics"). */
  processMetrics?: boolean;
  /**
   * Where WebSocket peers live and how offers reach other gateways
   * (docs/webtorrent.md); default: this gateway's own, in process. The
   * caller closes them.
   */
  webSocket?: { swarms: WsSwarmStore; relay: WsRelay; gateway?: string };
}

export interface ListeningPorts {
  /** undefined when HTTP_ENABLED is false. */
  httpPort: number | undefined;
  /** undefined when UDP_ENABLED is false. */
  udpPort: number | undefined;
  /** undefined when TLS is off (no TLS_CERT_FILE). */
  httpsPort: number | undefined;
  adminPort: number;
}

/** Where and how listenTracker() binds (docs/workers.md). */
export interface TrackerListenOptions {
  /** HTTP and UDP port; config.PORT by default. */
  port?: number;
  /** config.HTTPS_PORT by default. */
  httpsPort?: number;
  /** SO_REUSEPORT on every tracker socket, so the workers of one process share the ports. */
  reusePort?: boolean;
}

export type TrackerPorts = Omit<ListeningPorts, 'adminPort'>;

export interface Gateway {
  /** The HTTP tracker (fastify); `inject()` works before listen(). */
  http: FastifyInstance;
  /** The HTTPS tracker (docs/tls.md): the same routes; undefined when TLS is off. */
  https: FastifyInstance | undefined;
  /** Re-reads the certificate and key; undefined when TLS is off. */
  tls: TlsReloader | undefined;
  admin: FastifyInstance;
  /** The UDP tracker; its socket exists after listen(). */
  udp: UdpTracker;
  /** The WebTorrent WebSocket tracker (docs/webtorrent.md); undefined when WS_ENABLED is false. */
  ws: WsFrontend | undefined;
  /** The policy snapshot cache; undefined when no list or passkey step is on. */
  policy: PolicyCache | undefined;
  /** The load loop (docs/load.md); it samples once listen() has run. */
  load: LoadControl;
  listen(): Promise<ListeningPorts>;
  /** The tracker ports only, no admin port: a worker thread's listen (its main thread serves the admin port). */
  listenTracker(options?: TrackerListenOptions): Promise<TrackerPorts>;
  /** What /readyz answers for this gateway while it serves (docs/observability.md "Health and readiness"). */
  readiness(): Promise<Readiness>;
  /** Stops accepting, drains requests in flight, closes the sockets and the policy cache. The caller closes the storage. */
  close(): Promise<void>;
}

const PORT_ATTEMPTS = 20;
/** GET /v1/policy carries every list: allow it more than one announce batch's REMOTE_TIMEOUT_MS. */
const POLICY_TIMEOUT_MIN_MS = 10_000;

export function buildGateway(deps: GatewayDeps): Gateway {
  const { config, registry, storage } = deps;
  const logger = deps.logger.child({ module: 'gateway' });
  const clock = deps.clock ?? Date.now;
  const metrics = createGatewayMetrics(registry, clock, deps.processMetrics ?? true);
  const needs = policyNeeds(config);
  let policyCache: PolicyCache | undefined;
  let learner: LinkLearner | undefined;
  let abuse: AbuseControl | undefined;
  if (needs.snapshot) {
    const source =
      deps.policySource ?? policySourceFor(storage, { minTimeoutMs: POLICY_TIMEOUT_MIN_MS });
    if (source === undefined)
      throw new Error(
        `the ${storage.driver} store holds no policy data: TORRENT_APPROVAL, CLIENT_APPROVAL and PASSKEY_REQUIRED need an embedded store or storage-api`,
      );
    policyCache = createPolicyCache({
      source,
      refreshSeconds: config.POLICY_REFRESH_SECONDS,
      metrics,
      logger: logger.child({ module: 'policy' }),
      clock,
    });
    const cache = policyCache;
    const learnLink = source.learnLink?.bind(source);
    if (config.HYBRID_LINKS_LEARN && learnLink !== undefined)
      learner = createLinkLearner({
        windowSeconds: config.HYBRID_LINKS_LEARN_WINDOW_SECONDS,
        maxClients: config.HYBRID_LINKS_LEARN_MAX_CLIENTS,
        learn: learnLink,
        current: () => cache.current,
        metrics,
        logger: logger.child({ module: 'hybrid-links' }),
      });
    if (abuseBans(config))
      abuse = createAbuseControl({
        strikes: config.ABUSE_BAN_STRIKES,
        windowSeconds: config.ABUSE_BAN_WINDOW_SECONDS,
        banSeconds: config.ABUSE_BAN_SECONDS,
        maxAddresses: config.RATE_LIMIT_MAX_ADDRESSES,
        ban: source.ban?.bind(source),
        current: () => cache.current,
        metrics,
        logger: logger.child({ module: 'abuse' }),
      });
  } else if (deps.policySource !== undefined) {
    void deps.policySource.close();
  }
  let shared: SharedLimit | undefined;
  const sharedMetrics = createSharedLimitMetrics(registry);
  if (config.RATE_LIMIT_SHARED) {
    if (!hasRateCounters(storage))
      throw new Error(
        `RATE_LIMIT_SHARED: the ${storage.driver} store keeps no shared rate-limit counters (every driver does, except postgres with a custom schema: PG_QUERY_MIGRATE)`,
      );
    shared = createSharedLimit({
      limit: sharedLimitPerWindow(config),
      windowSeconds: config.RATE_LIMIT_SHARED_WINDOW_SECONDS,
      syncMs: config.RATE_LIMIT_SHARED_SYNC_MS,
      maxAddresses: config.RATE_LIMIT_MAX_ADDRESSES,
      store: storage,
      metrics: sharedMetrics,
      logger: logger.child({ module: 'shared-rate-limit' }),
      clock,
    });
  }
  const load = createLoadControl({
    config,
    registry,
    logger,
    sources: loadSources(storage),
  });
  const steps = buildSteps(config, policyCache, undefined, learner, abuse, shared);
  const tracker = new Tracker({
    storage,
    steps,
    policy: {
      numWantDefault: config.NUMWANT_DEFAULT,
      numWantMax: config.NUMWANT_MAX,
      movePeersByKey: config.MOVE_PEERS_BY_KEY,
    },
    intervalSeconds: config.ANNOUNCE_INTERVAL_SECONDS,
    load,
  });

  let secret: Buffer;
  if (config.UDP_CONNECTION_ID_SECRET !== undefined) {
    secret = Buffer.from(config.UDP_CONNECTION_ID_SECRET, 'hex');
  } else if (deps.connectionIdSecret !== undefined) {
    secret = deps.connectionIdSecret;
  } else {
    secret = randomBytes(32);
    if (config.UDP_ENABLED) {
      logger.warn(
        "UDP_CONNECTION_ID_SECRET is not set: using a random per-process secret, so replicas will not accept each other's UDP connection ids",
      );
    }
  }
  const connectionIds = new ConnectionIdCodec({
    secret,
    maxAgeSeconds: config.UDP_CONNECTION_ID_MAX_AGE_SECONDS,
  });

  const scrapeBytes = scrapeRequestBytes(config.SCRAPE_MAX_HASHES);
  if (config.HTTP_ENABLED && config.HTTP_MAX_HEADER_BYTES < scrapeBytes) {
    logger.warn(
      { HTTP_MAX_HEADER_BYTES: config.HTTP_MAX_HEADER_BYTES, needed: scrapeBytes },
      'HTTP_MAX_HEADER_BYTES is too small for an HTTP scrape of SCRAPE_MAX_HASHES hashes: such scrapes get 431',
    );
  }

  const fullScrapeMetrics = createFullScrapeMetrics(registry);
  let fullScrape: FullScrapeCache | undefined;
  if (config.FULL_SCRAPE_ENABLED) {
    const source = fullScrapeOf(storage);
    if (source === undefined)
      throw new Error(`FULL_SCRAPE_ENABLED: the ${storage.driver} store cannot list its swarms`);
    fullScrape = new FullScrapeCache({
      source,
      maxTorrents: config.FULL_SCRAPE_MAX_TORRENTS,
      refreshSeconds: config.FULL_SCRAPE_REFRESH_SECONDS,
      perMinute: config.FULL_SCRAPE_PER_MINUTE,
      burst: config.FULL_SCRAPE_BURST,
      maxAddresses: config.RATE_LIMIT_MAX_ADDRESSES,
      metrics: fullScrapeMetrics,
      logger: logger.child({ module: 'full-scrape' }),
      clock,
    });
  }
  const httpDeps = {
    ...(fullScrape === undefined ? {} : { fullScrape }),
    config,
    logger: logger.child({ module: 'http' }),
    metrics,
    tracker,
    resolveAddress: createClientAddressResolver({
      trustedProxies: config.TRUSTED_PROXIES,
      allowIpParam: config.ALLOW_IP_PARAM,
    }),
    clock,
  };
  const http = buildTrackerHttp(httpDeps);
  const tlsMetrics = createTlsMetrics(registry);
  let https: FastifyInstance | undefined;
  let tls: TlsReloader | undefined;
  if (config.TLS_CERT_FILE !== undefined && config.TLS_KEY_FILE !== undefined) {
    const files = { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE };
    const initial = readTlsMaterial(files);
    https = buildTrackerHttp({ ...httpDeps, tls: initial });
    const server: unknown = https.server;
    if (!(server instanceof TlsServer)) throw new Error('the HTTPS tracker has no TLS server');
    tls = new TlsReloader({
      files,
      server,
      initial,
      checkSeconds: config.TLS_RELOAD_CHECK_SECONDS,
      metrics: tlsMetrics,
      logger: logger.child({ module: 'tls' }),
    });
  }
  let ws: WsFrontend | undefined;
  let ownWs: { swarms: WsSwarmStore; relay: WsRelay } | undefined;
  if (config.WS_ENABLED) {
    const given = deps.webSocket;
    const place = given ?? {
      swarms: new MemoryWsSwarms({ peerLifetimeSeconds: config.WS_PEER_LIFETIME_SECONDS, clock }),
      relay: new LocalRelay(),
    };
    if (given === undefined) ownWs = place;
    ws = new WsFrontend({
      config,
      logger: logger.child({ module: 'ws' }),
      metrics,
      wsMetrics: createWsMetrics(registry),
      steps,
      swarms: place.swarms,
      relay: place.relay,
      gateway: given?.gateway ?? randomBytes(8).toString('hex'),
      resolveAddress: httpDeps.resolveAddress,
      clock,
    });
    if (config.HTTP_ENABLED) ws.attach(http.server);
    if (https !== undefined) ws.attach(https.server);
  }
  const udp = new UdpTracker({
    batch: udpBatchAddon(config.UDP_ENABLED ? config.UDP_BATCH_SYSCALLS : 'off', logger),
    host: config.HOST,
    numWantMax: config.NUMWANT_MAX,
    scrapeMaxHashes: config.SCRAPE_MAX_HASHES,
    allowIpParam: config.ALLOW_IP_PARAM,
    recvBufferBytes: config.UDP_RECV_BUFFER_BYTES,
    connectionIds,
    tracker,
    metrics,
    logger: logger.child({ module: 'udp' }),
    clock,
  });

  let storageAnsweredOnce = false;
  let closing = false;
  async function readiness(): Promise<Readiness> {
    // docs/policy.md: a replica is not ready before its first snapshot.
    if (policyCache !== undefined && policyCache.current === undefined) {
      const code = 'POLICY_ERR_NOT_LOADED';
      return { status: 'not ready', code, message: policyErrors[code].message };
    }
    // docs/decisions.md "Gateway readiness": the store must answer once
    // before the first ready; a later outage hits every replica alike, so it
    // keeps this one in its Service, answering coded "retry later" (BEP 31)
    // rather than leaving clients to time out against no endpoint at all.
    try {
      await storage.ping();
      storageAnsweredOnce = true;
      return { status: 'ready', checks: { storage: { ok: true, driver: storage.driver } } };
    } catch (err) {
      const code = isStoreError(err) ? err.code : 'STORE_ERR_UNAVAILABLE';
      const checks = { storage: { ok: false, driver: storage.driver, code } };
      if (!storageAnsweredOnce)
        return { status: 'not ready', code, message: 'storage has not answered yet', checks };
      return {
        status: 'degraded',
        code,
        message: `storage unavailable (${code}), answering retry later`,
        checks,
      };
    }
  }
  const admin = buildAdmin({
    ...policyAdminFor({
      config,
      storage,
      clock,
      logger,
      ...(policyCache === undefined ? {} : { changed: () => void policyCache?.refresh() }),
    }),
    registry,
    ready: readiness,
  });

  async function listenHttp(
    port: number,
    app: FastifyInstance,
    reusePort: boolean,
  ): Promise<number> {
    await app.listen({ port, host: config.HOST, ...(reusePort ? { reusePort } : {}) });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error('HTTP server has no port');
    return address.port;
  }

  /** PORT=0 still serves both protocols on one number: bind UDP, then TCP on the same port. */
  async function bindSharedEphemeralPort(reusePort: boolean): Promise<number> {
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await udp.listen(0, reusePort);
      if (await tcpPortFree(port, config.HOST)) return port;
    }
    throw new Error(`no port free for both TCP and UDP after ${PORT_ATTEMPTS} attempts`);
  }

  async function listenTracker(options: TrackerListenOptions = {}): Promise<TrackerPorts> {
    const port = options.port ?? config.PORT;
    const reusePort = options.reusePort ?? false;
    policyCache?.start();
    shared?.start();
    load.start(() => tracker.waiting);
    await ws?.start();
    let httpPort: number | undefined;
    let udpPort: number | undefined;
    if (config.HTTP_ENABLED && config.UDP_ENABLED) {
      udpPort =
        port === 0 ? await bindSharedEphemeralPort(reusePort) : await udp.listen(port, reusePort);
      httpPort = await listenHttp(udpPort, http, reusePort);
    } else if (config.HTTP_ENABLED) {
      httpPort = await listenHttp(port, http, reusePort);
    } else if (config.UDP_ENABLED) {
      udpPort = await udp.listen(port, reusePort);
    }
    const httpsPort =
      https === undefined
        ? undefined
        : await listenHttp(options.httpsPort ?? config.HTTPS_PORT, https, reusePort);
    tls?.start();
    return { httpPort, udpPort, httpsPort };
  }

  return {
    udp,
    http,
    https,
    ws,
    tls,
    admin: admin.app,
    policy: policyCache,
    load,
    listenTracker,
    readiness,
    async listen() {
      const ports = await listenTracker();
      const adminPort = await admin.listen(config.ADMIN_HOST, config.ADMIN_PORT);
      admin.serving();
      return { ...ports, adminPort };
    },
    async close() {
      if (closing) return;
      closing = true;
      admin.stopping();
      load.close();
      // Upgraded sockets keep the HTTP server open: they close first, and
      // their peers leave their swarms. The WebSocket relay's store work
      // finishes alongside the HTTP and UDP drain, never ahead of it.
      await ws?.disconnect();
      await Promise.all([
        ws?.close().then(() => Promise.all([ownWs?.swarms.close(), ownWs?.relay.close()])),
        http.close(),
        https?.close(),
        udp.close(),
        tls?.close(),
      ]);
      await Promise.all([admin.close(), policyCache?.close(), shared?.close()]);
    },
  };
}

/**
 * docs/policy.md "Shared rate limits": what one address's bucket admits in
 * a window, burst + rate x window, is what the cluster admits together.
 */
export function sharedLimitPerWindow(config: GatewayConfig): number {
  return Math.max(
    1,
    Math.floor(
      config.RATE_LIMIT_ANNOUNCE_BURST +
        config.RATE_LIMIT_ANNOUNCES_PER_SECOND * config.RATE_LIMIT_SHARED_WINDOW_SECONDS,
    ),
  );
}

/** A remote store's breaker and storage-api's reports; an embedded store has neither (docs/load.md). */
function loadSources(storage: GatewayStorage): LoadSources {
  if (!isRemoteStore(storage)) return {};
  return { circuitState: () => storage.circuitState, storageLoad: storage.storageLoad };
}

function tcpPortFree(port: number, host: string): Promise<boolean> {
  return listenTcp(host, port).then(
    () => true,
    () => false,
  );
}

/**
 * The batching addon per UDP_BATCH_SYSCALLS (docs/udp-batch.md). `on` without
 * the addon was refused when the config was checked; `auto` without it logs
 * why and serves with node:dgram.
 */
function udpBatchAddon(
  setting: 'auto' | 'on' | 'off',
  logger: GatewayDeps['logger'],
): UdpBatchAddon | undefined {
  if (setting === 'off') return undefined;
  const { addon, why } = loadUdpBatch();
  if (addon === undefined) {
    if (setting === 'on') throw new Error(`UDP_BATCH_SYSCALLS is on but ${why}`);
    logger.info({ why }, 'UDP batching addon not loaded: UDP uses node:dgram');
  }
  return addon;
}
