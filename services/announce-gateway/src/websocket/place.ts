// Where a gateway keeps its WebSocket peers (docs/webtorrent.md "Design"): on
// an embedded Redis (standalone, Sentinel, Cluster or a ring), in Redis,
// shared with every gateway on it; otherwise in process, and with worker
// threads in the main thread's hub (threads.ts).
import type { Logger } from 'pino';
import { openRedisClients } from '@shoal/storage/redis';
import type { GatewayConfig } from '../config.ts';
import { redisWsPlace, type WsPlace } from '@shoal/storage/ws';
import { WsThreadHub } from './threads.ts';

export function openWsPlace(config: GatewayConfig, logger: Logger): WsPlace | undefined {
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
 * workers share their swarms through Redis.
 */
export function openWsThreadHub(config: GatewayConfig): WsThreadHub | undefined {
  if (!config.WS_ENABLED) return undefined;
  if (config.STORAGE_DRIVER === 'redis') return undefined;
  return new WsThreadHub({
    peerLifetimeSeconds: config.WS_PEER_LIFETIME_SECONDS,
    sweepEveryMs: config.WS_PING_INTERVAL_SECONDS * 1000,
  });
}
