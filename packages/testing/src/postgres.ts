// A private PostgreSQL per test file (docs/conventions.md "Tests": tests own their
// servers). From Debian's binaries when present (initdb into a temp dir, a free
// loopback port, trust auth), from a container when a Docker engine answers and
// the binaries are missing. Each store gets its own database so tests stay
// isolated without a server each.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { dockerReachable } from './docker.ts';
import { freeTcpPort } from './ports.ts';

export interface StartPostgresOptions {
  /**
   * fsync=off makes tests several times faster; a clean shutdown (`restart()`)
   * still writes everything to disk, so committed data survives it either way.
   * Default false (off).
   */
  fsync?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Readonly<Record<string, string>>;
  /**
   * Serve TLS with a fresh self-signed certificate for 127.0.0.1 (needs the
   * openssl CLI); its path is `tlsCaFile`. Plain connections stay allowed.
   */
  tls?: boolean;
}

export interface PostgresServer {
  readonly host: string;
  /** Changes only for containers, whose mapped port may move on restart. */
  readonly port: number;
  /** The server certificate (its own CA) when started with `tls: true`. */
  readonly tlsCaFile: string | undefined;
  /** postgres://postgres@host:port/<database> */
  url(database?: string): string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Clean shutdown and start on the same data directory and port. */
  restart(): Promise<void>;
  /** Fast shutdown; the server is unreachable until `start()`. */
  stopServer(): Promise<void>;
  /** Starts a server stopped by `stopServer()`. */
  start(): Promise<void>;
  /**
   * Freezes the server's processes (SIGSTOP): connections stay open but
   * nothing answers, as with a hung host or a network black hole. Local only.
   */
  pause(): Promise<void>;
  /** Undoes `pause()`. */
  resume(): Promise<void>;
  /** Stops the server and removes its data. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_BIN_DIRS = [
  '/usr/lib/postgresql/17/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/15/bin',
];

/** Directory with initdb and postgres, or undefined. SHOAL_PG_BIN wins. */
export function postgresBinDir(): string | undefined {
  const forced = process.env.SHOAL_PG_BIN;
  if (forced !== undefined && forced !== '') return forced;
  const found = DEFAULT_BIN_DIRS.find(
    (d) => existsSync(join(d, 'postgres')) && existsSync(join(d, 'initdb')),
  );
  if (found !== undefined) return found;
  // Any other Debian major version.
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) {
      const dir = join('/usr/lib/postgresql', v, 'bin');
      if (existsSync(join(dir, 'postgres'))) return dir;
    }
  }
  return undefined;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (bin !== undefined) return startLocal(bin, options);
  if (await dockerReachable()) return startContainer(options);
  throw new Error(
    'PostgreSQL not found: install Debian package postgresql (scripts/system-deps.sh) or run Docker',
  );
}

/**
 * Runs one statement on its own connection, closed afterwards: for a test's
 * set-up (emptying a store's tables between tests), not for what it checks.
 */
export async function runSql(connectionString: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

let dbCounter = 0;

function makeServer(
  host: string,
  tlsCaFile: string | undefined,
  getPort: () => number,
  lifecycle: Pick<PostgresServer, 'restart' | 'stopServer' | 'start' | 'stop' | 'pause' | 'resume'>,
): PostgresServer {
  const url = (database = 'postgres'): string =>
    `postgres://postgres@${host}:${getPort()}/${database}`;
  return {
    host,
    tlsCaFile,
    get port() {
      return getPort();
    },
    url,
    async createDatabase(name) {
      const db = name ?? `t${process.pid}_${++dbCounter}`;
      await runSql(url(), `CREATE DATABASE ${pg.escapeIdentifier(db)} TEMPLATE template0`);
      return url(db);
    },
    ...lifecycle,
  };
}

async function startLocal(bin: string, options: StartPostgresOptions): Promise<PostgresServer> {
  const host = '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'shoal-pg-'));
  const dataDir = join(dir, 'data');
  // postgres refuses to run as root: hand the directory to the postgres user.
  const asUser = userInfo().uid === 0 ? postgresUser() : undefined;
  if (asUser !== undefined) {
    chownSync(dir, asUser.uid, asUser.gid);
    chmodSync(dir, 0o700);
  }
  const spawnOpts = asUser === undefined ? {} : { uid: asUser.uid, gid: asUser.gid };
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '--encoding=UTF8', '--locale=C'],
    { ...spawnOpts, encoding: 'utf8' },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}`);
  }

  let tlsCaFile: string | undefined;
  const tlsSettings: Record<string, string> = {};
  if (options.tls === true) {
    const cert = join(dir, 'server.crt');
    const key = join(dir, 'server.key');
    const gen = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { encoding: 'utf8' },
    );
    if (gen.status !== 0) throw new Error(`openssl failed: ${gen.stderr}`);
    // PostgreSQL refuses a key readable by others or owned by another user.
    chmodSync(key, 0o600);
    chmodSync(cert, 0o644);
    if (asUser !== undefined) {
      chownSync(key, asUser.uid, asUser.gid);
      chownSync(cert, asUser.uid, asUser.gid);
    }
    tlsCaFile = cert;
    Object.assign(tlsSettings, { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key });
  }

  const port = await freeTcpPort(host);
  const settings: Record<string, string> = {
    listen_addresses: host,
    unix_socket_directories: dir,
    fsync: options.fsync === true ? 'on' : 'off',
    synchronous_commit: options.fsync === true ? 'on' : 'off',
    full_page_writes: options.fsync === true ? 'on' : 'off',
    max_connections: '200',
    ...tlsSettings,
    ...options.settings,
  };
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);

  let child: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    log = '';
    const proc = spawn(join(bin, 'postgres'), args, {
      ...spawnOpts,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = proc;
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      if (log.length < 64 * 1024) log += chunk;
    });
    await waitReady(host, port, proc, () => log);
  };
  let paused = false;
  const signalAll = (pid: number, signal: NodeJS.Signals): void => {
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split(
      '\n',
    );
    for (const p of [String(pid), ...children]) {
      if (p.trim() === '') continue;
      try {
        process.kill(Number(p), signal);
      } catch {
        // Already gone.
      }
    }
  };
  const stopServer = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc?.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const pid = proc.pid;
    // A frozen server (pause()) must thaw to shut down, or its backends outlive it.
    if (paused) signalAll(pid, 'SIGCONT');
    paused = false;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    // SIGINT is PostgreSQL's "fast shutdown": abort sessions, checkpoint, exit cleanly.
    proc.kill('SIGINT');
    const timer = setTimeout(() => signalAll(pid, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const running = (): number => {
    const pid = child?.pid;
    if (pid === undefined) throw new Error('postgres is not running');
    return pid;
  };
  await start();
  return makeServer(host, tlsCaFile, () => port, {
    start,
    stopServer,
    async pause() {
      signalAll(running(), 'SIGSTOP');
      paused = true;
      await Promise.resolve();
    },
    async resume() {
      signalAll(running(), 'SIGCONT');
      paused = false;
      await Promise.resolve();
    },
    async restart() {
      await stopServer();
      await start();
    },
    async stop() {
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

function postgresUser(): { uid: number; gid: number } {
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) {
    throw new Error(
      'running as root needs a "postgres" system user (Debian package postgresql creates it)',
    );
  }
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function waitReady(
  host: string,
  port: number,
  proc: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`postgres exited (${proc.exitCode ?? proc.signalCode}): ${log()}`);
    }
    const client = new pg.Client({
      host,
      port,
      user: 'postgres',
      database: 'postgres',
      connectionTimeoutMillis: 1000,
    });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline)
        throw new Error(`postgres did not become ready on ${host}:${port}: ${log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function startContainer(options: StartPostgresOptions): Promise<PostgresServer> {
  if (options.tls === true)
    throw new Error('startPostgres({ tls: true }) needs local PostgreSQL binaries');
  const { GenericContainer, Wait } = await import('testcontainers');
  const settings: Record<string, string> = {
    fsync: options.fsync === true ? 'on' : 'off',
    max_connections: '200',
    ...options.settings,
  };
  const command = ['postgres'];
  for (const [k, v] of Object.entries(settings)) command.push('-c', `${k}=${v}`);
  const container = await new GenericContainer('postgres:15')
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withCommand(command)
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  const host = container.getHost() === 'localhost' ? '127.0.0.1' : container.getHost();
  let port = container.getMappedPort(5432);
  let running = true;
  const refresh = async (): Promise<void> => {
    port = container.getMappedPort(5432);
    const fake = { exitCode: null, signalCode: null } as unknown as ChildProcess;
    await waitReady(host, port, fake, () => '');
  };
  return makeServer(host, undefined, () => port, {
    async start() {
      if (running) return;
      await container.restart();
      running = true;
      await refresh();
    },
    pause() {
      return Promise.reject(new Error('pause() needs local PostgreSQL binaries'));
    },
    resume() {
      return Promise.reject(new Error('resume() needs local PostgreSQL binaries'));
    },
    async stopServer() {
      if (!running) return;
      // Pausing keeps the container (and its data) while the port stops answering.
      await container.exec(['pg_ctl', 'stop', '-D', '/var/lib/postgresql/data', '-m', 'fast'], {
        user: 'postgres',
      });
      running = false;
    },
    async restart() {
      await container.restart();
      running = true;
      await refresh();
    },
    async stop() {
      await container.stop();
    },
  });
}
