// Connections to PostgreSQL/CockroachDB: connection string (URL or libpq
// key=value DSN), TLS files, session settings, and the error mapping to the
// storage catalog. Queries go through pipelined clients (node-postgres >=
// 8.23 writes a query before the previous answer arrives; docs/decisions.md
// "Sources": ~2.3x serial upserts) or, when pipelining is off, pg.Pool.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { StoreError } from '../errors.ts';
import type { ResolvedPostgresStoreConfig } from './config.ts';

/** libpq key=value connection string -> the URL form node-postgres parses. */
export function dsnToUrl(dsn: string): string {
  const pairs = new Map<string, string>();
  let i = 0;
  const n = dsn.length;
  const skipSpace = (): void => {
    while (i < n && /\s/.test(dsn[i] as string)) i++;
  };
  while (true) {
    skipSpace();
    if (i >= n) break;
    const eq = dsn.indexOf('=', i);
    if (eq === -1) throw new StoreError('STORE_ERR_CONFIG', 'DATABASE_URL: DSN entry without "="');
    const key = dsn.slice(i, eq).trim();
    i = eq + 1;
    skipSpace();
    let value = '';
    if (dsn[i] === "'") {
      i++;
      while (i < n && dsn[i] !== "'") {
        if (dsn[i] === '\\' && i + 1 < n) i++;
        value += dsn[i];
        i++;
      }
      if (i >= n)
        throw new StoreError('STORE_ERR_CONFIG', 'DATABASE_URL: unterminated quote in DSN');
      i++;
    } else {
      while (i < n && !/\s/.test(dsn[i] as string)) {
        if (dsn[i] === '\\' && i + 1 < n) i++;
        value += dsn[i];
        i++;
      }
    }
    if (key === '')
      throw new StoreError('STORE_ERR_CONFIG', 'DATABASE_URL: DSN entry with an empty key');
    pairs.set(key, value);
  }
  const host = pairs.get('host') ?? pairs.get('hostaddr') ?? 'localhost';
  const user = pairs.get('user');
  const password = pairs.get('password');
  const auth =
    user === undefined
      ? ''
      : `${encodeURIComponent(user)}${password === undefined ? '' : `:${encodeURIComponent(password)}`}@`;
  const socket = host.startsWith('/');
  const hostPart = socket ? '' : host.includes(':') ? `[${host}]` : host;
  const port = pairs.get('port');
  const db = pairs.get('dbname');
  const query = new URLSearchParams();
  if (socket) query.set('host', host);
  for (const [k, v] of pairs) {
    if (!['host', 'hostaddr', 'user', 'password', 'port', 'dbname'].includes(k)) query.set(k, v);
  }
  const qs = query.toString();
  return `postgres://${auth}${hostPart}${port !== undefined && !socket ? `:${port}` : ''}/${db !== undefined ? encodeURIComponent(db) : ''}${qs === '' ? '' : `?${qs}`}`;
}

function isUrl(s: string): boolean {
  return /^(postgres|postgresql|cockroachdb):\/\//i.test(s) || s.startsWith('/');
}

/** node-postgres client settings from the driver config (read at boot; files read once). */
export function clientConfig(
  config: ResolvedPostgresStoreConfig,
  forMigration = false,
): pg.ClientConfig {
  const raw = config.DATABASE_URL.trim();
  const url = isUrl(raw) ? raw.replace(/^cockroachdb:/i, 'postgres:') : dsnToUrl(raw);
  let parsed: pg.ClientConfig;
  try {
    parsed = parseIntoClientConfig(url);
  } catch (err) {
    throw new StoreError('STORE_ERR_CONFIG', 'DATABASE_URL cannot be parsed', { cause: err });
  }
  const out: pg.ClientConfig = {
    ...parsed,
    connectionTimeoutMillis: config.PG_CONNECT_TIMEOUT_MS,
    keepAlive: true,
  };
  out.application_name ??= 'shoal';
  if (!forMigration && config.PG_STATEMENT_TIMEOUT_MS > 0) {
    out.statement_timeout = config.PG_STATEMENT_TIMEOUT_MS;
    // A server that stops answering (hung host, network black hole) never
    // enforces its own timeout: give up client-side a little later. On a
    // pipelined client this destroys the connection, so the slot reconnects.
    out.query_timeout = config.PG_STATEMENT_TIMEOUT_MS + config.PG_CONNECT_TIMEOUT_MS;
  }

  const settings: string[] = [];
  if (config.PG_ISOLATION_LEVEL !== 'server-default') {
    settings.push(
      `-c default_transaction_isolation=${config.PG_ISOLATION_LEVEL.replace(' ', '\\ ')}`,
    );
  }
  if (settings.length > 0)
    out.options = [parsed.options, ...settings]
      .filter((s) => s !== undefined && s !== '')
      .join(' ');

  const wantsTls =
    config.PG_TLS ||
    config.PG_TLS_CA_FILE !== undefined ||
    config.PG_TLS_CERT_FILE !== undefined ||
    (parsed.ssl !== undefined && parsed.ssl !== false);
  if (wantsTls) {
    const base: TlsOptions = typeof parsed.ssl === 'object' ? { ...parsed.ssl } : {};
    try {
      if (config.PG_TLS_CA_FILE !== undefined)
        base.ca = readFileSync(config.PG_TLS_CA_FILE, 'utf8');
      if (config.PG_TLS_CERT_FILE !== undefined)
        base.cert = readFileSync(config.PG_TLS_CERT_FILE, 'utf8');
      if (config.PG_TLS_KEY_FILE !== undefined)
        base.key = readFileSync(config.PG_TLS_KEY_FILE, 'utf8');
    } catch (err) {
      throw new StoreError('STORE_ERR_CONFIG', 'PG_TLS_* file cannot be read', { cause: err });
    }
    if (!config.PG_TLS_REJECT_UNAUTHORIZED) base.rejectUnauthorized = false;
    out.ssl = base;
  }
  return out;
}

// SQLSTATEs (PostgreSQL appendix A; CockroachDB uses the same codes).
const SERIALIZATION_FAILURE = '40001';
const DEADLOCK_DETECTED = '40P01';
const QUERY_CANCELED = '57014';
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '3D000', '28000', '28P01']);

function sqlState(err: unknown): string | undefined {
  if (err instanceof pg.DatabaseError) return err.code;
  return undefined;
}

/**
 * The database could not be reached or dropped the session, as opposed to
 * answering with an SQL error.
 */
export function isConnectionError(err: unknown): boolean {
  const cause = err instanceof StoreError ? err.cause : err;
  if (err instanceof StoreError && cause === undefined) return err.code === 'STORE_ERR_UNAVAILABLE';
  const code = sqlState(cause);
  if (code === undefined) return true;
  return code.startsWith('08') || UNAVAILABLE_STATES.has(code);
}

/** Errors worth running the same statement again for (CockroachDB requires client retries). */
export function isRetryable(err: unknown): boolean {
  const code = sqlState(err);
  return code === SERIALIZATION_FAILURE || code === DEADLOCK_DETECTED;
}

/**
 * Maps a driver error to the catalog once (docs/conventions.md "Errors"): statement
 * timeouts to STORE_ERR_TIMEOUT, data exceptions to STORE_ERR_BAD_INPUT,
 * everything else (connection refused or
 * lost, server shutting down, exhausted retries, a query that fails) to
 * STORE_ERR_UNAVAILABLE, with the original as cause.
 */
export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = sqlState(err);
  if (code === QUERY_CANCELED) return new StoreError('STORE_ERR_TIMEOUT', what, { cause: err });
  // Class 22, data exception: a value the column cannot hold (e.g. NUL in TEXT).
  if (code?.startsWith('22') === true)
    return new StoreError('STORE_ERR_BAD_INPUT', `${what}: SQLSTATE ${code}`, { cause: err });
  if (code !== undefined && (code.startsWith('08') || UNAVAILABLE_STATES.has(code))) {
    return new StoreError(
      'STORE_ERR_UNAVAILABLE',
      `${what}: server refused or dropped the session (${code})`,
      {
        cause: err,
      },
    );
  }
  const detail = code === undefined ? 'connection failed' : `SQLSTATE ${code}`;
  return new StoreError('STORE_ERR_UNAVAILABLE', `${what}: ${detail}`, { cause: err });
}

export interface Statement {
  /** Prepared-statement name, or undefined for a one-off. */
  name?: string | undefined;
  text: string;
  values?: unknown[] | undefined;
}

export interface QueryRunner {
  query<R extends pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /**
   * Statements in order on one connection, written together (one round trip
   * when pipelined); for BEGIN ... COMMIT brackets. Rejects with the first
   * failure; a COMMIT after a failed statement rolls back.
   */
  batch(statements: readonly Statement[]): Promise<pg.QueryResult[]>;
  close(): Promise<void>;
}

function toConfig(s: Statement): pg.QueryConfig {
  return s.name === undefined
    ? { text: s.text, values: s.values ?? [] }
    : { name: s.name, text: s.text, values: s.values ?? [] };
}

async function settleInOrder(pending: Array<Promise<pg.QueryResult>>): Promise<pg.QueryResult[]> {
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<pg.QueryResult>).value);
}

/** pg.Pool: one query per connection at a time. */
export function poolRunner(cfg: pg.ClientConfig, size: number): QueryRunner {
  const pool = new pg.Pool({ ...cfg, max: size, idleTimeoutMillis: 30_000 });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return {
    query: (name, text, values) => pool.query({ name, text, values }),
    async batch(statements) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const out: pg.QueryResult[] = [];
        for (const s of statements) out.push(await client.query(toConfig(s)));
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e as Error;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

interface Slot {
  client: pg.Client | undefined;
  connecting: Promise<pg.Client> | undefined;
}

/**
 * A fixed set of pipelined connections, queries spread round-robin. A lost connection is dropped and the next query opens a new one, so
 * the store recovers from a database restart without a process restart.
 * After a failed connect, queries fail at once for `holdMs` instead of each
 * waiting for its own connect attempt.
 */
export function pipelineRunner(cfg: pg.ClientConfig, size: number, holdMs: number): QueryRunner {
  const slots: Slot[] = Array.from({ length: size }, () => ({
    client: undefined,
    connecting: undefined,
  }));
  let downUntil = 0;
  let lastConnectError: unknown;
  let closed = false;
  let next = 0;

  const connect = (slot: Slot): Promise<pg.Client> => {
    if (slot.connecting !== undefined) return slot.connecting;
    const client = new pg.Client({ ...cfg, pipeline: true });
    const drop = (): void => {
      if (slot.client === client) slot.client = undefined;
    };
    client.on('error', drop);
    client.on('end', drop);
    slot.connecting = client.connect().then(
      () => {
        slot.connecting = undefined;
        if (closed) {
          void client.end().catch(() => undefined);
          throw new StoreError('STORE_ERR_UNAVAILABLE', 'store closed');
        }
        slot.client = client;
        return client;
      },
      (err: unknown) => {
        slot.connecting = undefined;
        lastConnectError = err;
        if (holdMs > 0) downUntil = Date.now() + holdMs;
        void client.end().catch(() => undefined);
        throw err;
      },
    );
    return slot.connecting;
  };

  const pick = async (): Promise<pg.Client> => {
    if (closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'store closed');
    const slot = slots[next] as Slot;
    next = (next + 1) % slots.length;
    if (slot.client !== undefined) return slot.client;
    if (Date.now() < downUntil) {
      throw new StoreError(
        'STORE_ERR_UNAVAILABLE',
        'database unreachable (recent connect failed)',
        {
          cause: lastConnectError,
        },
      );
    }
    return connect(slot);
  };

  return {
    async query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]) {
      const client = await pick();
      return client.query<R>({ name, text, values });
    },
    async batch(statements) {
      const client = await pick();
      // Queued in one synchronous step, so no other caller's query lands inside the bracket.
      return settleInOrder(statements.map((s) => client.query(toConfig(s))));
    },
    async close() {
      closed = true;
      await Promise.all(
        slots.map(async (s) => {
          const c = s.client ?? (await s.connecting?.catch(() => undefined));
          s.client = undefined;
          await c?.end().catch(() => undefined);
        }),
      );
    },
  };
}
