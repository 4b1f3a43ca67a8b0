// The gateway's remote store (STORAGE_DRIVER=remote) as a PeerStore for the
// conformance suite: the real client of services/announce-gateway/src/remote
// -> a real storage-api (buildStorageApi) listening on loopback port 0 -> a
// backend store built by the caller with the suite's clock, so the suite's
// fake time reaches the backend through storage-api unchanged.
//
// collectGarbage is the gc-worker's call (POST /v1/gc with the token), since a
// gateway never collects; everything else is the gateway's own client.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createRemoteStore, loadGatewayConfig } from '@shoal/announce-gateway';
import { buildStorageApi, loadStorageApiConfig } from '@shoal/storage-api';
import { hasRateCounters, type FullScrape, type GcResult, type PeerStore } from '@shoal/storage';
import type { PingableDataStore, RateCounters } from '@shoal/storage';
import { createCompositeStore } from '@shoal/storage/composite';
import type { PeerStoreFactory } from '@shoal/storage/conformance';
import { storageApiEnv } from '@shoal/testing/launcher';

type Backend = PeerStore & PingableDataStore;
type Driver = 'memory' | 'redis' | 'postgres';

export interface RemoteFactoryOptions {
  /** The backend driver's name, as storage-api's PEER_STORE_DRIVER would say it. */
  driver: Driver;
  /** Builds an EMPTY backend store with the suite's options (clock included). */
  backend: (opts: Parameters<PeerStoreFactory>[0]) => Promise<Backend>;
  /** More storage-api configuration the driver requires (DATABASE_URL); the backend is the one built above. */
  env?: () => Record<string, string>;
}

/** A conformance factory: each call builds backend, storage-api and remote client, closed together. */
export function remoteStoreFactory(options: RemoteFactoryOptions): PeerStoreFactory {
  return async (opts) => {
    const backend = await options.backend(opts);
    const token = randomBytes(16).toString('hex');
    const logger = pino({ level: 'silent' });
    const api = buildStorageApi({
      config: loadStorageApiConfig({
        env: storageApiEnv(token, options.driver, {
          PEER_LIFETIME_SECONDS: String(opts.peerLifetimeSeconds),
          ...options.env?.(),
        }),
        argv: [],
      }),
      logger,
      registry: new Registry(),
      store: createCompositeStore({ peers: backend, data: backend, dataDriver: options.driver }),
    });
    let port: number;
    try {
      ({ port } = await api.listen());
    } catch (err) {
      await Promise.allSettled([api.close(), backend.close()]);
      throw err;
    }
    const url = `http://127.0.0.1:${port}`;
    const remote = createRemoteStore(
      loadGatewayConfig({
        env: {
          STORAGE_DRIVER: 'remote',
          STORAGE_API_URL: url,
          STORAGE_API_TOKEN: token,
          // A loaded 2-core machine is slow, not down: no op of the suite should time out.
          REMOTE_TIMEOUT_MS: '20000',
        },
        argv: [],
      }),
      { logger, registry: new Registry() },
    );
    let closed: Promise<void> | undefined;
    const store: PeerStore & FullScrape & Partial<RateCounters> = {
      driver: remote.driver,
      announce: (a) => remote.announce(a),
      scrape: (h) => remote.scrape(h),
      fullScrape: (limit) => remote.fullScrape(limit),
      stats: () => remote.stats(),
      ping: () => remote.ping(),
      // The sync of the shared rate limit, when the client has one (it always does).
      ...(hasRateCounters(remote) ? { addRateCounts: remote.addRateCounts.bind(remote) } : {}),
      async collectGarbage(): Promise<GcResult> {
        const res = await fetch(`${url}/v1/gc`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(20_000),
        });
        if (res.status !== 200) throw new Error(`POST /v1/gc answered ${res.status}`);
        const { peersRemoved, swarmsRemoved } = (await res.json()) as GcResult;
        return { peersRemoved, swarmsRemoved };
      },
      close() {
        closed ??= remote
          .close()
          .then(() => api.close())
          .finally(() => backend.close());
        return closed;
      },
    };
    return store;
  };
}
