// Every way an operator can deploy the tracker, started from real processes on
// loopback with port 0: two gateway replicas sharing UDP_CONNECTION_ID_SECRET,
// plus one gateway bound to [::1] on the same store for the IPv6 cases. A
// suite that runs against `TOPOLOGIES` runs against each; adding a deployment
// (a WebSocket frontend, containers) is one more entry in that list.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe } from 'vitest';
import { startPostgres } from '@shoal/testing/postgres';
import { startCluster, startRedis, startRing } from '@shoal/testing/redis';
import { startLocalTopology } from '@shoal/testing/topology';
import {
  startGateway,
  type ServiceEnv,
  type GatewayProcess,
  type TrackerKind,
  startService,
  storageApiEnv,
} from '@shoal/testing/launcher';

/** One gateway as a client sees it. */
export interface TrackerEndpoint {
  readonly name: string;
  /** The address clients use: 127.0.0.1 or ::1. */
  readonly host: string;
  readonly httpPort: number;
  readonly udpPort: number;
  announceUrl(kind: TrackerKind): string;
  scrapeUrl(): string;
  alive(): boolean;
}

/** A started topology. */
export interface Deployment {
  /** Two replicas on 127.0.0.1 with one UDP connection-ID secret. */
  readonly replicas: readonly [TrackerEndpoint, TrackerEndpoint];
  /**
   * A replica on [::1] with the same secret and, where the topology has one,
   * the same store; undefined when started without IPv6.
   */
  readonly ipv6: TrackerEndpoint | undefined;
  /** Log tails of the processes, for assertion messages. */
  describe(): string;
  stop(): Promise<void>;
}

export interface TopologySpec {
  /** Column title in the results table. */
  readonly name: string;
  /** The replicas share one store: a peer announced on one is served by the others. */
  readonly sharedSwarm: boolean;
  /** Non-compact answers carry `peer id` (the store keeps peer_ids; docs/redis.md `REDIS_STORE_PEER_IDS`). */
  readonly keepsPeerIds: boolean;
  start(opts: StartOptions): Promise<Deployment>;
}

export interface StartOptions {
  /** Also start the [::1] replica (false where the machine has no IPv6 loopback). */
  ipv6: boolean;
  /** More gateway settings, for a suite that tests one of them on every store. */
  env?: ServiceEnv;
  /** The two replicas' bind address (default 127.0.0.1); '::' serves both families. */
  host?: string;
}

function fromGateway(name: string, g: GatewayProcess): TrackerEndpoint {
  return {
    name,
    host: g.host,
    httpPort: g.httpPort,
    udpPort: g.udpPort,
    announceUrl: (kind) => g.announceUrl(kind),
    scrapeUrl: () => g.scrapeUrl(),
    alive: () => g.alive(),
  };
}

/**
 * Two IPv4 replicas and one IPv6 replica of the gateway, each configured with
 * `env` and one shared secret; `cleanup` stops what they use when they stop.
 */
async function startReplicas(
  env: ServiceEnv,
  opts: StartOptions,
  cleanup: () => Promise<void>,
): Promise<Deployment> {
  const secret = randomBytes(32).toString('hex');
  const replica = opts.host ?? '127.0.0.1';
  const hosts = opts.ipv6 ? [replica, replica, '::1'] : [replica, replica];
  const started = await Promise.allSettled(
    hosts.map((host) =>
      startGateway({ ...env, ...opts.env, HOST: host, UDP_CONNECTION_ID_SECRET: secret }),
    ),
  );
  const gateways = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(gateways.map((g) => g.stop()));
    await cleanup();
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  const [a, b, v6] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess | undefined];
  return {
    replicas: [fromGateway('gateway-a', a), fromGateway('gateway-b', b)],
    ipv6: v6 === undefined ? undefined : fromGateway('gateway-v6', v6),
    describe: () => gateways.map((g) => g.describe()).join('\n'),
    stop,
  };
}

export const embeddedMemory: TopologySpec = {
  name: 'embedded memory',
  sharedSwarm: false,
  keepsPeerIds: true,
  start: (opts) => startReplicas({ STORAGE_DRIVER: 'memory' }, opts, async () => {}),
};

export const embeddedRedis: TopologySpec = {
  name: 'embedded redis',
  sharedSwarm: true,
  keepsPeerIds: false,
  async start(opts) {
    const redis = await startRedis();
    // docs/redis.md's defaults, as an operator gets them (peer_ids not stored).
    return startReplicas(
      {
        STORAGE_DRIVER: 'redis',
        REDIS_ADDRESSES: redis.address,
        REDIS_PASSWORD: redis.password ?? '',
      },
      opts,
      () => redis.close(),
    );
  },
};

/** Gateways on one 3-master Redis Cluster (docs/redis.md "Topologies"); not in TOPOLOGIES. */
export const embeddedRedisCluster: TopologySpec = {
  name: 'embedded redis cluster',
  sharedSwarm: true,
  keepsPeerIds: false,
  async start(opts) {
    const cluster = await startCluster({ masters: 3 });
    return startReplicas(
      {
        STORAGE_DRIVER: 'redis',
        REDIS_MODE: 'cluster',
        REDIS_ADDRESSES: cluster.addresses.map((a) => `${a.host}:${a.port}`).join(','),
        REDIS_PASSWORD: cluster.password,
      },
      opts,
      () => cluster.close(),
    );
  },
};

/** Gateways on one client-side ring of 3 standalone shards (docs/redis.md "Topologies"); not in TOPOLOGIES. */
export const embeddedRedisRing: TopologySpec = {
  name: 'embedded redis ring',
  sharedSwarm: true,
  keepsPeerIds: false,
  async start(opts) {
    const ring = await startRing(3);
    return startReplicas(
      {
        STORAGE_DRIVER: 'redis',
        REDIS_MODE: 'ring',
        REDIS_RING_SHARDS: ring.shards.map((s, i) => `s${i}=${s.address}`).join(','),
        REDIS_PASSWORD: ring.shards[0]!.password ?? '',
      },
      opts,
      () => ring.close(),
    );
  },
};

export const embeddedPostgres: TopologySpec = {
  name: 'embedded postgres',
  sharedSwarm: true,
  keepsPeerIds: true,
  async start(opts) {
    const pg = await startPostgres();
    try {
      return await startReplicas(
        { STORAGE_DRIVER: 'postgres', DATABASE_URL: await pg.createDatabase() },
        opts,
        () => pg.stop(),
      );
    } catch (err) {
      await pg.stop();
      throw err;
    }
  },
};

/** docs/storage-api.md's development pairing: remote gateways -> one storage-api with peers and data in memory. */
export const remoteMemory: TopologySpec = {
  name: 'remote, storage-api memory',
  sharedSwarm: true,
  keepsPeerIds: true,
  async start(opts) {
    const token = randomBytes(24).toString('hex');
    const api = await startService({ service: 'storage-api', env: storageApiEnv(token, 'memory') });
    const gateways = await startReplicas(
      {
        STORAGE_DRIVER: 'remote',
        STORAGE_API_URL: `http://127.0.0.1:${Number(api.listening.port)}`,
        STORAGE_API_TOKEN: token,
      },
      opts,
      async () => {
        await api.stop();
      },
    );
    return {
      ...gateways,
      describe: () => `${gateways.describe()}\nstorage-api\n${api.tail(30)}`,
    };
  },
};

/**
 * docs/local-topology.md: gateways on the remote driver -> storage-api ->
 * Redis Sentinel (peers) + PostgreSQL (downloads, KV), and a gc-worker.
 */
export const splitTopology: TopologySpec = {
  name: 'split (remote)',
  sharedSwarm: true,
  keepsPeerIds: false,
  async start(opts) {
    const topo = await startLocalTopology();
    let v6: GatewayProcess | undefined;
    try {
      if (opts.ipv6)
        v6 = await startGateway({
          HOST: '::1',
          STORAGE_DRIVER: 'remote',
          STORAGE_API_URL: topo.storageApi.url,
          STORAGE_API_TOKEN: topo.secrets.storageApiToken,
          UDP_CONNECTION_ID_SECRET: topo.secrets.udpConnectionIdSecret,
        });
    } catch (err) {
      await topo.stop();
      throw err;
    }
    const replica = (i: 0 | 1): TrackerEndpoint => {
      const g = topo.gateways[i]!;
      const proc = topo.gatewayProcesses[i]!;
      const udpPort = Number(new URL(g.udpAnnounce).port);
      return {
        name: g.name,
        host: '127.0.0.1',
        httpPort: g.port,
        udpPort,
        announceUrl: (kind) => (kind === 'http' ? g.httpAnnounce : g.udpAnnounce),
        scrapeUrl: () => g.scrape,
        alive: () => proc.alive(),
      };
    };
    return {
      replicas: [replica(0), replica(1)],
      ipv6: v6 === undefined ? undefined : fromGateway('gateway-v6', v6),
      describe: () =>
        [
          ...topo.gatewayProcesses.map((p) => `${p.name}\n${p.tail(30)}`),
          `storage-api\n${topo.storageApiProcess.tail(30)}`,
          v6?.describe() ?? '',
        ].join('\n'),
      async stop() {
        await v6?.stop();
        await topo.stop();
      },
    };
  },
};

/** Every deployment the conformance suite runs against, in table order. */
export const TOPOLOGIES: readonly TopologySpec[] = [
  embeddedMemory,
  embeddedRedis,
  embeddedPostgres,
  remoteMemory,
  splitTopology,
];

/** The stores a gateway feature is tested on, each as gateway replicas (the split topology's are the storage-api's). */
export const GATEWAY_STORES: readonly TopologySpec[] = [
  embeddedMemory,
  embeddedRedis,
  embeddedPostgres,
  remoteMemory,
];

/** A started topology as a feature test asks it. */
export interface ReplicaPair {
  readonly topology: TopologySpec;
  /** The first replica. */
  readonly first: () => TrackerEndpoint;
  /** The other replica where the replicas share swarms; the first again where each keeps its own. */
  readonly second: () => TrackerEndpoint;
}

/**
 * One `describe` block, "`title`: <topology>", per topology of
 * `GATEWAY_STORES`, its replicas (no [::1] one) started with `opts` before its
 * tests and stopped after them; `tests` declares the tests.
 */
export function describeOnEveryStore(
  title: string,
  opts: Omit<StartOptions, 'ipv6'>,
  tests: (replicas: ReplicaPair) => void,
): void {
  for (const topology of GATEWAY_STORES) {
    describe(`${title}: ${topology.name}`, () => {
      let deployment: Deployment | undefined;
      beforeAll(async () => {
        deployment = await topology.start({ ...opts, ipv6: false });
      });
      afterAll(async () => {
        await deployment?.stop();
      });
      const replica = (i: 0 | 1): TrackerEndpoint => {
        if (deployment === undefined) throw new Error(`${topology.name} did not start`);
        return deployment.replicas[topology.sharedSwarm ? i : 0];
      };
      tests({ topology, first: () => replica(0), second: () => replica(1) });
    });
  }
}
