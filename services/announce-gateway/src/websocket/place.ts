// Where a gateway (or one worker thread of it) keeps its WebSocket peers
// (docs/webtorrent.md "Design"): on an embedded Redis, in Redis, shared with
// every gateway on it; otherwise in process.
import type { Logger } from 'pino';
import { openRedisConnection } from '@shoal/storage/redis';
import type { GatewayConfig } from '../config.ts';
import { redisWsPlace, type WsPlace } from './redis.ts';

export function openWsPlace(
  config: GatewayConfig,
  logger: Logger,
  inWorkerThread = false,
): WsPlace | undefined {
  const place = redisWsPlace(config, openRedisConnection, (err) =>
    logger.warn({ err }, 'redis connection error (WebSocket swarms)'),
  );
  if (
    config.WS_ENABLED &&
    place === undefined &&
    (inWorkerThread || config.STORAGE_DRIVER !== 'memory')
  )
    logger.warn(
      { storage: config.STORAGE_DRIVER },
      inWorkerThread
        ? 'WebSocket peers are kept in this worker thread only: browsers meet the browsers of this thread (docs/webtorrent.md "Status")'
        : 'WebSocket peers are kept in this gateway only: browsers meet the browsers of this replica (docs/webtorrent.md "Status")',
    );
  return place;
}
