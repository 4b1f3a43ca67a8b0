// The PostgreSQL of the local topology (topology.ts): initdb in a dir of its
// own (owned by the postgres user when run as root), the server on a loopback
// port as a process-group server that restarts on it (WAL replay included),
// and a `shoal` database.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresBinDir } from './postgres.ts';
import { freeTcpPort } from './ports.ts';
import {
  controlled,
  spawnLogged,
  waitUntil,
  type ServerProcess,
  type SpawnSpec,
  type TopologyProcess,
} from './process-group.ts';

export interface TopologyPostgres {
  postgres: ServerProcess;
  /** The `shoal` database. */
  databaseUrl: string;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0)
    throw new Error('running as root needs a "postgres" system user (Debian package postgresql)');
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * `dirs` receives the data dir (outside the state dir, so the postgres user
 * can own it) as soon as it exists, `track` the server as soon as it runs,
 * so a failure later removes and stops them.
 */
export async function startTopologyPostgres(
  detached: boolean,
  dirs: string[],
  track: <T extends TopologyProcess>(p: T) => T,
): Promise<TopologyPostgres> {
  const bin = postgresBinDir();
  if (bin === undefined)
    throw new Error(
      'PostgreSQL binaries not found: install Debian package postgresql (scripts/system-deps.sh)',
    );
  const asUser = postgresUser();
  const pgDir = mkdtempSync(join(tmpdir(), 'shoal-local-pg-'));
  dirs.push(pgDir);
  if (asUser !== undefined) {
    chownSync(pgDir, asUser.uid, asUser.gid);
    chmodSync(pgDir, 0o700);
  }
  const dataDir = join(pgDir, 'data');
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '--encoding=UTF8', '--locale=C'],
    {
      encoding: 'utf8',
      ...(asUser ?? {}),
    },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const pgPort = await freeTcpPort();
  const pgSpec: SpawnSpec = {
    name: 'postgres',
    command: join(bin, 'postgres'),
    args: [
      '-D',
      dataDir,
      '-p',
      String(pgPort),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${pgDir}`,
      '-c',
      'max_connections=200',
    ],
    logDir: pgDir,
    // SIGINT is PostgreSQL's fast shutdown; it stops its own backends.
    stopSignal: 'SIGINT',
    group: false,
    ...(asUser === undefined ? {} : { user: asUser }),
    detached,
  };
  const adminUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;
  const launchPostgres = async (): Promise<TopologyProcess> => {
    const p = spawnLogged(pgSpec);
    // After a crash this includes WAL replay.
    await waitUntil('postgres', p, async () => {
      const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.query('SELECT 1');
        return true;
      } finally {
        await c.end().catch(() => undefined);
      }
    });
    return p;
  };
  const postgres = track(controlled(await launchPostgres(), pgPort, detached, launchPostgres));
  const setup = new pg.Client({ connectionString: adminUrl });
  await setup.connect();
  await setup.query('CREATE DATABASE shoal');
  await setup.end();
  const databaseUrl = `postgres://postgres@127.0.0.1:${pgPort}/shoal`;
  return { postgres, databaseUrl };
}
