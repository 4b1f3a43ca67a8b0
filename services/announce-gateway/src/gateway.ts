// Composition root of one gateway (STYLE.md "Composition"): everything it
// uses arrives as an argument, nothing listens until listen(), and only
// main.ts handles signals, so a test can run two gateways in one process.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ConnectionIdCodec } from '@shoal/protocol';
import { buildAdmin } from './admin.ts';
import { createClientAddressResolver } from './client-address.ts';
import type { GatewayConfig } from './config.ts';
import { buildTrackerHttp } from './http.ts';
import { createGatewayMetrics } from './metrics.ts';
import type { GatewayStorage } from './storage.ts';
import { UdpTracker } from './udp.ts';

export interface GatewayDeps {
  config: GatewayConfig;
  logger: Logger;
  registry: Registry;
  storage: GatewayStorage;
  /** Milliseconds since the epoch; tests move it to age connection ids. */
  clock?: () => number;
}

export interface ListeningPorts {
  /** undefined when HTTP_ENABLED is false. */
  httpPort: number | undefined;
  /** undefined when UDP_ENABLED is false. */
  udpPort: number | undefined;
  adminPort: number;
}

export interface Gateway {
  /** The HTTP tracker (fastify); `inject()` works before listen(). */
  http: FastifyInstance;
  admin: FastifyInstance;
  /** The UDP tracker; its socket exists after listen(). */
  udp: UdpTracker;
  listen(): Promise<ListeningPorts>;
  /** Stops accepting, drains requests in flight, closes the sockets. The caller closes the storage. */
  close(): Promise<void>;
}

const PORT_ATTEMPTS = 20;

export function buildGateway(deps: GatewayDeps): Gateway {
  const { config, registry, storage } = deps;
  const logger = deps.logger.child({ module: 'gateway' });
  const clock = deps.clock ?? Date.now;
  const metrics = createGatewayMetrics(registry);

  let secret: Buffer;
  if (config.UDP_CONNECTION_ID_SECRET === undefined) {
    secret = randomBytes(32);
    if (config.UDP_ENABLED) {
      logger.warn(
        "UDP_CONNECTION_ID_SECRET is not set: using a random per-process secret, so replicas will not accept each other's UDP connection ids",
      );
    }
  } else {
    secret = Buffer.from(config.UDP_CONNECTION_ID_SECRET, 'hex');
  }
  const connectionIds = new ConnectionIdCodec({
    secret,
    maxAgeSeconds: config.UDP_CONNECTION_ID_MAX_AGE_SECONDS,
  });
  const policy = { numWantDefault: config.NUMWANT_DEFAULT, numWantMax: config.NUMWANT_MAX };

  const http = buildTrackerHttp({
    config,
    logger: logger.child({ module: 'http' }),
    metrics,
    storage,
    resolveAddress: createClientAddressResolver({
      trustedProxies: config.TRUSTED_PROXIES,
      allowIpParam: config.ALLOW_IP_PARAM,
    }),
  });
  const udp = new UdpTracker({
    host: config.HOST,
    interval: config.ANNOUNCE_INTERVAL_SECONDS,
    policy,
    scrapeMaxHashes: config.SCRAPE_MAX_HASHES,
    allowIpParam: config.ALLOW_IP_PARAM,
    recvBufferBytes: config.UDP_RECV_BUFFER_BYTES,
    connectionIds,
    storage,
    metrics,
    logger: logger.child({ module: 'udp' }),
    clock,
  });

  let listening = false;
  let closing = false;
  const admin = buildAdmin({
    registry,
    ready: async () => {
      if (closing) throw Object.assign(new Error('shutting down'), { code: 'SHUTTING_DOWN' });
      if (!listening)
        throw Object.assign(new Error('not listening yet'), { code: 'NOT_LISTENING' });
      await storage.ping();
    },
  });

  async function listenHttp(port: number): Promise<number> {
    await http.listen({ port, host: config.HOST });
    const address = http.server.address();
    if (address === null || typeof address === 'string') throw new Error('HTTP server has no port');
    return address.port;
  }

  /** PORT=0 still serves both protocols on one number: bind UDP, then TCP on the same port. */
  async function bindSharedEphemeralPort(): Promise<number> {
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await udp.listen(0);
      if (await tcpPortFree(port, config.HOST)) return port;
    }
    throw new Error(`no port free for both TCP and UDP after ${PORT_ATTEMPTS} attempts`);
  }

  return {
    udp,
    http,
    admin,
    async listen() {
      let httpPort: number | undefined;
      let udpPort: number | undefined;
      if (config.HTTP_ENABLED && config.UDP_ENABLED) {
        udpPort =
          config.PORT === 0 ? await bindSharedEphemeralPort() : await udp.listen(config.PORT);
        httpPort = await listenHttp(udpPort);
      } else if (config.HTTP_ENABLED) {
        httpPort = await listenHttp(config.PORT);
      } else {
        udpPort = await udp.listen(config.PORT);
      }
      await admin.listen({ port: config.ADMIN_PORT, host: config.ADMIN_HOST });
      const adminAddress = admin.server.address();
      if (adminAddress === null || typeof adminAddress === 'string')
        throw new Error('admin server has no port');
      listening = true;
      return { httpPort, udpPort, adminPort: adminAddress.port };
    },
    async close() {
      if (closing) return;
      closing = true;
      await Promise.all([http.close(), udp.close()]);
      listening = false;
      await admin.close();
    },
  };
}

function tcpPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}
