// Where a gateway keeps its WebSocket peers (docs/webtorrent.md "Design"): on
// an embedded Redis (standalone, Sentinel, Cluster or a ring), in Redis,
// shared with every gateway on it; in the split topology, in storage-api
// (split.ts); otherwise in process, and with worker threads in the main
// thread's hub (threads.ts).
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { PeerStore } from '@shoal/storage';
import { openRedisClients } from '@shoal/storage/redis';
import type { GatewayConfig } from '../config.ts';
import { redisWsPlace, type WsPlace } from '@shoal/storage/ws';
import { isRemoteStore } from '../remote/store.ts';
import { remoteWsPlace } from './split.ts';
import { WsThreadHub } from './threads.ts';

export function openWsPlace(
  config: GatewayConfig,
  logger: Logger,
  storage: PeerStore,
  registry: Registry,
): WsPlace | undefined {
  if (
    config.WS_ENABLED &&
    isRemoteStore(storage) &&
    config.STORAGE_API_URL !== undefined &&
    config.STORAGE_API_TOKEN !== undefined
  )
    return remoteWsPlace(storage, {
      url: config.STORAGE_API_URL,
      token: config.STORAGE_API_TOKEN,
      timeoutMs: config.REMOTE_TIMEOUT_MS,
      queueMax: config.WS_RELAY_QUEUE_MAX,
      reconnectMaxMs: config.WS_RELAY_RECONNECT_MAX_MS,
      peerLifetimeSeconds: config.WS_PEER_LIFETIME_SECONDS,
      registry,
      logger,
    });
  const place = redisWsPlace(config, openRedisClients, (err) =>
    logger.warn({ err }, 'redis connection error (WebSocket swarms)'),
  );
  if (config.WS_ENABLED && place === undefined && config.STORAGE_DRIVER !== 'memory')
    logger.warn(
      { storage: config.STORAGE_DRIVER },
      'WebSocket peers are kept in this gateway only: browsers meet the browsers of this replica (docs/webtorrent.md "Status")',
    );
  return place;
}

/**
 * With worker threads and no Redis to carry WebSocket peers between them
 * (docs/webtorrent.md "Worker threads"): the main thread's hub, which every
 * worker reaches over its own port. undefined when WebSocket is off or the
 * workers share their swarms through Redis or storage-api.
 */
export function openWsThreadHub(config: GatewayConfig): WsThreadHub | undefined {
  if (!config.WS_ENABLED) return undefined;
  if (config.STORAGE_DRIVER === 'redis') return undefined;
  // Each worker is a gateway of its own to storage-api (docs/webtorrent.md "Worker threads").
  if (config.STORAGE_DRIVER === 'remote') return undefined;
  return new WsThreadHub({
    peerLifetimeSeconds: config.WS_PEER_LIFETIME_SECONDS,
    sweepEveryMs: config.WS_PING_INTERVAL_SECONDS * 1000,
  });
}
