// Starts the announce gateway as users run it: its own process, configured by
// environment variables only, ports reported in its "listening" log line.
import { randomBytes } from 'node:crypto';
import { HarnessError } from '@shoal/testing/errors';
import { baseEnv, repoRoot, spawnManaged, type ManagedProcess } from '@shoal/testing/processes';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';

export type TrackerKind = 'http' | 'udp';

/** Gateway environment variables (PORT, STORAGE_DRIVER, REDIS_URL ...); values override the harness defaults. */
export type GatewayEnv = Readonly<Record<string, string>>;

export interface RunningGateway {
  readonly httpPort: number;
  readonly udpPort: number;
  readonly adminPort: number;
  /** The address clients use (loopback). */
  readonly host: string;
  readonly pid: number;
  /** http://host:port/announce or udp://host:port/announce. */
  announceUrl(kind: TrackerKind): string;
  /** http://host:port/scrape */
  scrapeUrl(): string;
  /** http://adminHost:adminPort + path (/healthz, /readyz, /metrics). */
  adminUrl(path: string): string;
  /** stdout (pino JSON) lines so far. */
  readonly logs: readonly string[];
  alive(): boolean;
  /** SIGTERM, SIGKILL after the grace; resolves with the exit code (null when it had to be killed). */
  stop(): Promise<number | null>;
  /** Log and stderr tails, for assertion messages. */
  describe(): string;
}

export interface StartGatewayOptions {
  startTimeoutMs?: number;
  stopGraceMs?: number;
}

const gatewayMain = `${repoRoot}services/announce-gateway/src/main.ts`;

interface ListeningLine {
  msg: 'listening';
  http: number;
  udp: number;
  admin: number;
}

function parseListening(line: string): ListeningLine | undefined {
  if (!line.includes('"listening"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const rec = parsed as Record<string, unknown>;
  if (rec.msg !== 'listening') return undefined;
  const { http, udp, admin } = rec;
  if (typeof http !== 'number' || typeof udp !== 'number' || typeof admin !== 'number')
    return undefined;
  return { msg: 'listening', http, udp, admin };
}

function clientHost(bindHost: string): string {
  if (bindHost === '0.0.0.0' || bindHost === '') return '127.0.0.1';
  if (bindHost === '::') return '::1';
  return bindHost;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The full environment a gateway gets: harness defaults (loopback, port 0, fresh secret), then `env`. */
export function gatewayEnv(env: GatewayEnv = {}): Record<string, string> {
  return baseEnv({
    ...LOOPBACK_ENV,
    LOG_LEVEL: 'info',
    UDP_CONNECTION_ID_SECRET: randomBytes(32).toString('hex'),
    ...env,
  });
}

/** Spawns the gateway process without waiting for it (for tests of how it fails to start). */
export function spawnGateway(
  env: GatewayEnv = {},
  onStdoutLine?: (line: string) => void,
): ManagedProcess {
  return spawnWithEnv(gatewayEnv(env), onStdoutLine);
}

function spawnWithEnv(
  fullEnv: Record<string, string>,
  onStdoutLine?: (line: string) => void,
): ManagedProcess {
  return spawnManaged(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', gatewayMain],
    { name: 'announce-gateway', env: fullEnv, cwd: repoRoot },
    onStdoutLine,
  );
}

export async function startGateway(
  env: GatewayEnv = {},
  opts: StartGatewayOptions = {},
): Promise<RunningGateway> {
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const stopGraceMs = opts.stopGraceMs ?? 10_000;
  const fullEnv = gatewayEnv(env);
  let onListening: (l: ListeningLine) => void = () => {};
  const listening = new Promise<ListeningLine>((resolve) => {
    onListening = resolve;
  });
  const proc = spawnWithEnv(fullEnv, (line) => {
    const l = parseListening(line);
    if (l !== undefined) onListening(l);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new HarnessError(
          'HARNESS_ERR_TIMEOUT',
          `no "listening" log line within ${startTimeoutMs} ms\n${proc.describe()}`,
        ),
      );
    }, startTimeoutMs);
  });
  const exitedEarly = proc.exited.then((s) => {
    throw new HarnessError(
      'HARNESS_ERR_EXITED',
      `gateway exited (${s.code ?? s.signal}) before listening\n${proc.describe()}`,
    );
  });
  // The race below is its only consumer; after a normal stop it must not surface as unhandled.
  exitedEarly.catch(() => {});
  let ports: ListeningLine;
  try {
    ports = await Promise.race([listening, timeout, exitedEarly]);
  } catch (err) {
    await proc.stop(2_000);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const host = clientHost(fullEnv.HOST ?? '127.0.0.1');
  const adminHost = clientHost(fullEnv.ADMIN_HOST ?? '127.0.0.1');
  return {
    httpPort: ports.http,
    udpPort: ports.udp,
    adminPort: ports.admin,
    host,
    pid: proc.pid,
    announceUrl: (kind) =>
      `${kind}://${urlHost(host)}:${kind === 'http' ? ports.http : ports.udp}/announce`,
    scrapeUrl: () => `http://${urlHost(host)}:${ports.http}/scrape`,
    adminUrl: (path) => `http://${urlHost(adminHost)}:${ports.admin}${path}`,
    logs: proc.stdout,
    alive: () => proc.alive(),
    stop: () => proc.stop(stopGraceMs),
    describe: () => proc.describe(),
  };
}
