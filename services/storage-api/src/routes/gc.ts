// POST /v1/gc and the lease routes: what the gc-worker asks of storage-api
// (docs/gc-worker.md).
import type { FastifyInstance } from 'fastify';
import { ROUTES } from '@shoal/storage-api-contract';
import { ApiError } from '../errors.ts';
import { objectBody, type RouteContext } from './context.ts';

// eslint-disable-next-line @typescript-eslint/require-await
export async function gcRoutes(api: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { store, locks, log, timed, peerDriver, dataDriver } = ctx;
  api.post(ROUTES.gc, { config: { endpoint: 'gc' } }, async () => {
    const start = performance.now();
    const result = await timed(peerDriver, 'gc', () => store.collectGarbage());
    const durationMs = Math.round(performance.now() - start);
    log.info({ ...result, durationMs }, 'garbage collected');
    return { ...result, durationMs };
  });

  const leases = { config: { endpoint: 'leases' as const } };
  api.post(ROUTES.lease, leases, async (request) => {
    const { name } = request.params as Record<string, string>;
    const { holder, ttlMs } = objectBody(request.body);
    if (typeof holder !== 'string' || typeof ttlMs !== 'number') {
      throw new ApiError('RPC_ERR_BAD_BODY', 'body must be { holder: string, ttlMs: number }');
    }
    return timed(dataDriver, 'lease', () => locks.acquire(name ?? '', holder, ttlMs));
  });
  api.delete(ROUTES.lease, leases, async (request) => {
    const { name } = request.params as Record<string, string>;
    const { holder } = objectBody(request.body);
    if (typeof holder !== 'string')
      throw new ApiError('RPC_ERR_BAD_BODY', 'body must be { holder: string }');
    const released = await timed(dataDriver, 'lease', () => locks.release(name ?? '', holder));
    return { released };
  });
}
