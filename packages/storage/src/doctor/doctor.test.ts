// doctor against real servers: what an operator reads for a Redis
// with and without persistence, a Sentinel set, PostgreSQL migrated and not,
// a port nobody listens on, a wrong password, a hung server and a skewed clock.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeTcpPort } from '@shoal/testing/ports';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import {
  startCluster,
  startRedis,
  startRing,
  startSentinelSet,
  type RedisCluster,
  type RedisRing,
  type RedisServer,
  type SentinelSet,
} from '@shoal/testing/redis';
import { createPostgresStore } from '../postgres/store.ts';
import type { BackendConfig } from '../open/config.ts';
import { redisStoreConfig } from '../redis/config.ts';
import { BACKUP_MARKER, runDoctor as runDoctorOn, type DoctorCheck } from './index.ts';
import { scriptVersionProblem } from './redis.ts';

/** A backend as these tests write it: the driver and its settings under their environment names. */
type Backend =
  | { driver: 'memory'; config: object }
  | { driver: 'redis'; config: Record<string, unknown> }
  | { driver: 'postgres'; config: { DATABASE_URL: string } };

function backend(b: Backend): BackendConfig {
  switch (b.driver) {
    case 'memory':
      return { driver: 'memory' };
    case 'redis':
      return { driver: 'redis', redis: redisStoreConfig(b.config) };
    case 'postgres':
      return { driver: 'postgres', postgres: b.config };
  }
}

/** storage-api's two backends, as storage-api names them (PEER_STORE_DRIVER, DATA_STORE_DRIVER). */
function runDoctor(input: {
  peers: Backend;
  data: Backend;
  clock?: () => number;
  timeoutMs?: number;
}): Promise<DoctorCheck[]> {
  const { peers, data, ...rest } = input;
  return runDoctorOn({
    store: { driver: 'composite', peers: backend(peers), data: backend(data) },
    ...rest,
  });
}

const memory = { driver: 'memory' as const, config: {} };

function redisConfig(server: RedisServer, extra: Record<string, unknown> = {}) {
  return {
    REDIS_MODE: 'standalone',
    REDIS_ADDRESSES: [server.address],
    REDIS_PASSWORD: server.password,
    ...extra,
  };
}

function find(checks: DoctorCheck[], suffix: string): DoctorCheck {
  const found = checks.filter((c) => c.name.endsWith(suffix));
  expect(
    found.map((c) => c.name),
    `one check named *${suffix} in ${JSON.stringify(checks, null, 1)}`,
  ).toHaveLength(1);
  return found[0]!;
}

describe('doctor: Redis version', () => {
  // Only Debian's 7.0 runs here; the versions an operator may still run are
  // checked by what the server reports in INFO.
  it('fails a server older than 7.0 for peers and lets 7.x, later and unknown versions through', () => {
    expect(scriptVersionProblem('6.2.14')).toContain('needs Redis 7.0 or later');
    expect(scriptVersionProblem('5.0.7')).toContain('Redis 5.0.7 is too old');
    for (const ok of ['7.0.0', '7.0.15', '7.4.1', '8.0.2', '255.255.255', 'unknown version'])
      expect(scriptVersionProblem(ok)).toBeUndefined();
  });
});

describe('doctor: Redis standalone', () => {
  let durable: RedisServer;
  let bare: RedisServer;
  let misconfigured: RedisServer;
  beforeAll(async () => {
    [durable, bare, misconfigured] = await Promise.all([
      // deploy/redis/redis.conf: appendonly yes, volatile-lru, zset-max-listpack-entries 1024.
      startRedis(),
      startRedis({ args: ['--appendonly', 'no'] }),
      startRedis({
        args: ['--maxmemory-policy', 'allkeys-lru', '--zset-max-listpack-entries', '128'],
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([durable?.close(), bare?.close(), misconfigured?.close()]);
  });

  it('a Redis as deployed passes, holding peers and durable data', async () => {
    const redis = { driver: 'redis' as const, config: redisConfig(durable) };
    const checks = await runDoctor({ peers: redis, data: redis });
    expect(find(checks, 'connection')).toMatchObject({ status: 'ok' });
    expect(find(checks, 'connection').message).toMatch(/Redis 7|Redis \d/);
    expect(find(checks, 'version')).toMatchObject({ status: 'ok' });
    expect(find(checks, 'persistence')).toMatchObject({ status: 'ok' });
    expect(find(checks, 'persistence').message).toContain('appendonly yes');
    expect(find(checks, 'eviction')).toMatchObject({ status: 'ok' });
    expect(find(checks, 'eviction').message).toContain('volatile-lru');
    expect(find(checks, 'listpack')).toMatchObject({ status: 'ok' });
    expect(find(checks, 'clock')).toMatchObject({ status: 'ok' });
    // No replicas behind durable data is worth a warning, not a failure.
    expect(find(checks, 'replication')).toMatchObject({ status: 'warn' });
    expect(find(checks, 'replication').message).toContain('without replicas');
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
  });

  it('no persistence fails when Redis holds durable data, and is fine when it holds only peers', async () => {
    const redis = { driver: 'redis' as const, config: redisConfig(bare) };
    const asData = await runDoctor({ peers: memory, data: redis });
    const persistence = find(asData, 'persistence');
    expect(persistence.status).toBe('fail');
    expect(persistence.message).toBe(
      `Redis at ${bare.address} has no persistence (appendonly no, no save points): download counts and KV data kept there are lost on restart; set appendonly yes (deploy/redis/redis.conf)`,
    );

    const asPeers = await runDoctor({ peers: redis, data: memory });
    expect(find(asPeers, 'persistence')).toMatchObject({ status: 'ok' });
    expect(find(asPeers, 'persistence').message).toContain('holds only peers');
    expect(find(asPeers, 'replication')).toMatchObject({ status: 'ok' });
    // The memory data store is the one to worry about then.
    expect(find(asPeers, 'memory store')).toMatchObject({ status: 'warn' });
    expect(find(asPeers, 'memory store').message).toContain('lost on every restart');
  });

  it('allkeys eviction fails for durable data; a small listpack limit warns', async () => {
    const redis = { driver: 'redis' as const, config: redisConfig(misconfigured) };
    const checks = await runDoctor({ peers: redis, data: redis });
    expect(find(checks, 'eviction')).toMatchObject({ status: 'fail' });
    expect(find(checks, 'eviction').message).toContain('allkeys-lru');
    expect(find(checks, 'eviction').message).toContain('passkeys');
    const listpack = find(checks, 'listpack');
    expect(listpack.status).toBe('warn');
    expect(listpack.message).toContain('zset-max-listpack-entries 128');
    expect(listpack.message).toContain('1024');

    const peersOnly = await runDoctor({ peers: redis, data: memory });
    expect(find(peersOnly, 'eviction')).toMatchObject({ status: 'ok' });
  });

  it('a wrong password is reported as such', async () => {
    const redis = {
      driver: 'redis' as const,
      config: redisConfig(durable, { REDIS_PASSWORD: 'not-the-password' }),
    };
    const checks = await runDoctor({ peers: redis, data: redis });
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({
      name: `redis ${durable.address} connection`,
      status: 'fail',
    });
    expect(checks[0]!.message).toContain('wrong password');
  });

  it('a port nobody listens on is reported as refused', async () => {
    const port = await freeTcpPort();
    const redis = { driver: 'redis' as const, config: { REDIS_ADDRESSES: [`127.0.0.1:${port}`] } };
    const checks = await runDoctor({ peers: redis, data: memory });
    expect(find(checks, 'connection')).toMatchObject({ status: 'fail' });
    expect(find(checks, 'connection').message).toContain(
      `Redis at 127.0.0.1:${port} refused the connection`,
    );
  });

  it('clock skew: over 1 s warns, over 5 s fails', async () => {
    // The skew is measured at the midpoint of one round trip, so it is off by
    // up to half of it (a loaded machine made 8 s read 7.97 s): the seconds
    // are checked to the nearest one, the direction and wording exactly.
    const skewIn = (message: string, direction: string): number => {
      const m = new RegExp(
        `^the clock of Redis at 127\\.0\\.0\\.1:\\d+ is (\\d+\\.\\d\\d) s ${direction} storage-api's`,
      ).exec(message);
      expect(m, message).not.toBeNull();
      return Number(m![1]);
    };
    const redis = { driver: 'redis' as const, config: redisConfig(durable) };
    const warn = find(
      await runDoctor({ peers: redis, data: memory, clock: () => Date.now() + 3000 }),
      'clock',
    );
    expect(warn.status).toBe('warn');
    expect(skewIn(warn.message, 'behind')).toBeCloseTo(3, 0);
    const fail = find(
      await runDoctor({ peers: redis, data: memory, clock: () => Date.now() - 8000 }),
      'clock',
    );
    expect(fail.status).toBe('fail');
    expect(skewIn(fail.message, 'ahead of')).toBeCloseTo(8, 0);
    expect(fail.message).toContain('NTP');
  });

  it('a hung server does not hang the doctor past timeoutMs', async () => {
    const hung = await startRedis();
    try {
      hung.pause();
      const redis = { driver: 'redis' as const, config: redisConfig(hung) };
      const started = performance.now();
      const checks = await runDoctor({ peers: redis, data: redis, timeoutMs: 500 });
      // The server never answers; under the 5 s default that a doctor ignoring
      // timeoutMs would wait for, with the rest as margin for a loaded machine.
      expect(performance.now() - started).toBeLessThan(5000);
      expect(
        checks.some((c) => c.status === 'fail' && c.message.includes('did not answer within')),
      ).toBe(true);
    } finally {
      hung.resume();
      await hung.close();
    }
  });
});

describe('doctor: Redis Sentinel', () => {
  let set: SentinelSet;
  beforeAll(async () => {
    set = await startSentinelSet({ replicas: 1, sentinels: 3 });
  });
  afterAll(async () => {
    await set?.close();
  });

  const config = (extra: Record<string, unknown> = {}) => ({
    REDIS_MODE: 'sentinel',
    REDIS_SENTINELS: set.sentinelAddresses.map((a) => `${a.host}:${a.port}`),
    REDIS_MASTER_NAME: set.masterName,
    REDIS_SENTINEL_PASSWORD: set.sentinelPassword,
    REDIS_PASSWORD: set.password,
    ...extra,
  });

  it('checks quorum on every sentinel, the replicas they know, and the primary they resolve', async () => {
    const redis = { driver: 'redis' as const, config: config() };
    const checks = await runDoctor({ peers: redis, data: redis });
    const quorum = checks.filter(
      (c) => c.name.startsWith('sentinel ') && c.name.endsWith(' quorum'),
    );
    expect(quorum).toHaveLength(3);
    for (const q of quorum) {
      expect(q.status).toBe('ok');
      expect(q.message).toContain('usable Sentinels');
    }
    expect(find(checks, `${set.masterName} reachable`)).toMatchObject({
      status: 'ok',
      message: '3 of 3 configured sentinels answer',
    });
    const replicas = find(checks, `${set.masterName} replicas`);
    expect(replicas.status).toBe('ok');
    expect(replicas.message).toContain(`${set.servers[1]!.address}`);
    const primary = await set.primary();
    const replication = find(checks, 'replication');
    expect(replication.name).toBe(`redis ${primary.address} replication`);
    expect(replication).toMatchObject({ status: 'ok' });
    expect(replication.message).toContain('1 connected replica');
    expect(find(checks, 'persistence')).toMatchObject({ status: 'ok' });
  });

  it('an unknown master name: each sentinel explains, and no primary is found', async () => {
    const redis = {
      driver: 'redis' as const,
      config: config({ REDIS_MASTER_NAME: 'nosuchmaster' }),
    };
    const checks = await runDoctor({ peers: redis, data: memory });
    const quorum = checks.filter((c) => c.name.endsWith(' quorum'));
    expect(quorum).toHaveLength(3);
    for (const q of quorum) {
      expect(q.status).toBe('fail');
      expect(q.message).toMatch(/No such master/i);
    }
    expect(find(checks, 'nosuchmaster primary')).toMatchObject({ status: 'fail' });
  });

  it('a wrong sentinel password and one dead sentinel address are counted', async () => {
    const dead = await freeTcpPort();
    const redis = {
      driver: 'redis' as const,
      config: config({
        REDIS_SENTINELS: [
          ...set.sentinelAddresses.map((a) => `${a.host}:${a.port}`),
          `127.0.0.1:${dead}`,
        ],
      }),
    };
    const checks = await runDoctor({ peers: redis, data: memory });
    const reachable = find(checks, `${set.masterName} reachable`);
    expect(reachable.status).toBe('warn');
    expect(reachable.message).toContain('3 of 4');
    expect(find(checks, `127.0.0.1:${dead} quorum`).message).toContain('refused the connection');

    const wrong = {
      driver: 'redis' as const,
      config: config({ REDIS_SENTINEL_PASSWORD: 'wrong-password' }),
    };
    const failed = await runDoctor({ peers: wrong, data: memory });
    expect(find(failed, `${set.masterName} reachable`)).toMatchObject({ status: 'fail' });
    expect(failed.filter((c) => c.message.includes('wrong password'))).toHaveLength(3);
  });
});

describe('doctor: PostgreSQL', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a migrated database passes: version, migrations, isolation, clock', async () => {
    const url = await server.createDatabase();
    const store = await createPostgresStore({ DATABASE_URL: url }, { peerLifetimeSeconds: 60 });
    await store.close();
    const pgStore = {
      driver: 'postgres' as const,
      config: { DATABASE_URL: url, PG_ISOLATION_LEVEL: 'repeatable read' },
    };
    const checks = await runDoctor({ peers: pgStore, data: pgStore });
    expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(find(checks, 'version').message).toMatch(/runs PostgreSQL \d+/);
    expect(find(checks, 'migrations').message).toContain('every migration applied');
    expect(find(checks, 'isolation').message).toContain('REPEATABLE READ');
    expect(find(checks, 'clock').message).toMatch(
      /^the clock of PostgreSQL at \S+ is \d\.\d\d s (ahead of|behind) storage-api's/,
    );
  });

  it("reports the last backup's age from the marker deploy/backup/postgres.sh writes; old warns", async () => {
    const url = await server.createDatabase();
    const store = await createPostgresStore({ DATABASE_URL: url }, { peerLifetimeSeconds: 60 });
    await store.close();
    const pgStore = { driver: 'postgres' as const, config: { DATABASE_URL: url } };
    const none = find(await runDoctor({ peers: pgStore, data: pgStore }), 'backup');
    expect(none.status).toBe('ok');
    expect(none.message).toMatch(/records no backup .*SHOW SCHEDULES/);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const mark = (ms: number) =>
      client.query(
        `INSERT INTO shoal_kv (context, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (context, key) DO UPDATE SET value = EXCLUDED.value`,
        [BACKUP_MARKER.context, BACKUP_MARKER.key, String(ms)],
      );
    try {
      const now = Date.now();
      await mark(now - 90 * 60_000);
      const recent = find(await runDoctor({ peers: pgStore, data: pgStore }), 'backup');
      expect(recent.status).toBe('ok');
      expect(recent.message).toMatch(/completed 90 min ago, at \d{4}-/);
      await mark(now - 3 * 86_400_000);
      const old = find(await runDoctor({ peers: pgStore, data: pgStore }), 'backup');
      expect(old.status).toBe('warn');
      expect(old.message).toMatch(/completed 3\.0 days ago.*not been backed up since/);
      // Peers only: no backup line (nothing durable to back up there).
      const peersOnly = await runDoctor({
        peers: pgStore,
        data: { driver: 'memory', config: {} },
      });
      expect(peersOnly.some((c) => c.name.endsWith(' backup'))).toBe(false);
    } finally {
      await client.end();
    }
  });

  it('an unmigrated database fails with what to run; a partial schema names the missing migration', async () => {
    const url = await server.createDatabase();
    const pgStore = { driver: 'postgres' as const, config: { DATABASE_URL: url } };
    const checks = await runDoctor({ peers: memory, data: pgStore });
    const migrations = find(checks, 'migrations');
    expect(migrations.status).toBe('fail');
    expect(migrations.message).toContain('no Shoal schema');
    expect(migrations.message).toContain('migrate-cli.ts');

    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(
      'CREATE TABLE shoal_schema_migrations (version INT4 PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INT8 NOT NULL)',
    );
    await client.end();
    const outdated = find(await runDoctor({ peers: memory, data: pgStore }), 'migrations');
    expect(outdated.status).toBe('fail');
    expect(outdated.message).toContain(
      'missing migrations 1 (peers, downloads, kv), 2 (download receipts)',
    );
  });

  it('a database that does not exist, a refused port, and clock skew', async () => {
    const missing = {
      driver: 'postgres' as const,
      config: { DATABASE_URL: server.url('no_such_db') },
    };
    const checks = await runDoctor({ peers: memory, data: missing });
    expect(find(checks, 'connection').status).toBe('fail');
    expect(find(checks, 'connection').message).toContain('database no_such_db does not exist');

    const port = await freeTcpPort();
    const refused = {
      driver: 'postgres' as const,
      config: { DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${port}/db` },
    };
    const down = find(await runDoctor({ peers: memory, data: refused }), 'connection');
    expect(down.status).toBe('fail');
    expect(down.message).toContain(`PostgreSQL at 127.0.0.1:${port}/db refused the connection`);
    expect(down.message).not.toContain('secret');

    const url = await server.createDatabase();
    const store = await createPostgresStore({ DATABASE_URL: url }, { peerLifetimeSeconds: 60 });
    await store.close();
    const skewed = find(
      await runDoctor({
        peers: memory,
        data: { driver: 'postgres', config: { DATABASE_URL: url } },
        clock: () => Date.now() + 6000,
      }),
      'clock',
    );
    expect(skewed.status).toBe('fail');
    expect(skewed.message).toMatch(/6\.\d\d s behind/);
  });
});

describe('doctor: Redis Cluster and ring', () => {
  let cluster: RedisCluster;
  let ring: RedisRing;
  beforeAll(async () => {
    [cluster, ring] = await Promise.all([startCluster({ masters: 3 }), startRing(2)]);
  });
  afterAll(async () => {
    await Promise.all([cluster?.close(), ring?.close()]);
  });

  it('cluster: the state, then every node found through one seed', async () => {
    const seed = cluster.addresses[0]!;
    const redis = {
      driver: 'redis' as const,
      config: {
        REDIS_MODE: 'cluster',
        REDIS_ADDRESSES: [`${seed.host}:${seed.port}`],
        REDIS_PASSWORD: cluster.password,
      },
    };
    const checks = await runDoctor({ peers: redis, data: memory });
    expect(find(checks, 'redis cluster')).toMatchObject({ status: 'ok' });
    expect(find(checks, 'redis cluster').message).toContain('3 primaries and 0 replicas');
    for (const node of cluster.nodes) {
      expect(find(checks, `redis ${node.address} connection`).status).toBe('ok');
      expect(find(checks, `redis ${node.address} persistence`).status).toBe('ok');
    }
  });

  it('ring: each shard is checked, the first named as the home of KV data', async () => {
    const [a, b] = ring.shards;
    const redis = {
      driver: 'redis' as const,
      config: {
        REDIS_MODE: 'ring',
        REDIS_RING_SHARDS: [`a=${a!.address}`, `b=${b!.address}`],
        REDIS_PASSWORD: a!.password,
      },
    };
    const checks = await runDoctor({ peers: redis, data: redis });
    expect(find(checks, `redis ${a!.address} connection`).message).toContain(
      'ring shard a (KV data lives here)',
    );
    expect(find(checks, `redis ${b!.address} connection`).message).toContain('ring shard b');
    expect(find(checks, `redis ${b!.address} connection`).message).not.toContain(
      'KV data lives here',
    );
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
  });
});
