// Doctor checks of a PostgreSQL or CockroachDB database (docs/postgres.md,
// docs/cockroachdb.md): reachable with the configured credentials and TLS,
// the dialect matches, migrations applied, the last backup, isolation, clock.
import pg from 'pg';
import { clientConfig } from '../postgres/connection.ts';
import { resolvePostgresStoreConfig, type PostgresStoreConfigInput } from '../postgres/config.ts';
import { MIGRATIONS } from '../postgres/migrations.ts';
import {
  HOLDS,
  addr,
  codeAndMessage,
  describeError,
  durable,
  networkFailure,
  clockCheck,
  stoppedAnswering,
  type Run,
  type Role,
} from './run.ts';

function postgresFailure(
  err: unknown,
  where: string,
  user: string,
  database: string,
  timeoutMs: number,
): string {
  const { code, message } = codeAndMessage(err);
  const network = networkFailure(code, message, where, timeoutMs);
  if (network !== undefined) return network;
  switch (code) {
    case '28P01':
      return `${where} rejected the password of user ${user} (authentication failed, 28P01)`;
    case '28000':
      return `${where} refused user ${user}: no pg_hba.conf entry allows it, or the role may not log in (28000: ${message})`;
    case '3D000':
      return `${where}: database ${database} does not exist (3D000)`;
    case '53300':
      return `${where} has no free connection slots (too many clients, 53300)`;
    case '57P03':
      return `${where} is starting up or shutting down (57P03)`;
    default:
      return `${where}: ${message}${code === '' ? '' : ` (${code})`}`;
  }
}

/**
 * Where deploy/backup/postgres.sh records each backup it completes (shoal_kv;
 * epoch milliseconds). CockroachDB's backup schedule records nothing here.
 */
export const BACKUP_MARKER = { context: 'shoal.backup', key: 'last-ms' } as const;
/** A recorded backup older than this warns (the chart's schedules run hourly to daily). */
const BACKUP_WARN_MS = 48 * 3600_000;

function formatAge(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

async function backupAgeCheck(
  run: Run,
  q: <R extends pg.QueryResultRow>(text: string) => Promise<R[]>,
  name: string,
  where: string,
): Promise<void> {
  const [row] = await q<{ value: string }>(
    `SELECT value FROM shoal_kv WHERE context = '${BACKUP_MARKER.context}' AND key = '${BACKUP_MARKER.key}'`,
  );
  const at = Number(row?.value);
  if (row === undefined || !Number.isFinite(at)) {
    run.add(
      name,
      'ok',
      `${where} records no backup (deploy/backup/postgres.sh records each one it completes; CockroachDB's backup schedule does not: check it with SHOW SCHEDULES)`,
    );
    return;
  }
  const age = run.clock() - at;
  run.add(
    name,
    age > BACKUP_WARN_MS ? 'warn' : 'ok',
    `the last backup recorded in ${where} (deploy/backup/postgres.sh) completed ${formatAge(age)} ago, at ${new Date(at).toISOString()}${age > BACKUP_WARN_MS ? ': the durable data has not been backed up since' : ''}`,
  );
}

export async function checkPostgres(
  run: Run,
  config: PostgresStoreConfigInput,
  role: Role,
): Promise<void> {
  let resolved;
  let options: pg.ClientConfig;
  try {
    resolved = resolvePostgresStoreConfig(config);
    options = clientConfig(resolved, true);
  } catch (err) {
    run.add(
      'postgres config',
      'fail',
      `the PostgreSQL settings are not usable: ${describeError(err)}`,
    );
    return;
  }
  const host = typeof options.host === 'string' ? options.host : 'localhost';
  const port = typeof options.port === 'number' ? options.port : Number(options.port ?? 5432);
  const database = options.database ?? options.user ?? 'postgres';
  const user = options.user ?? 'postgres';
  const where = `PostgreSQL at ${host.startsWith('/') ? host : addr({ host, port })}/${database}`;
  const name = (aspect: string): string =>
    `postgres ${host.startsWith('/') ? host : addr({ host, port })}/${database} ${aspect}`;
  const timeoutMs = run.remaining();
  const client = new pg.Client({
    ...options,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
  });
  // A dropped connection after connect() emits 'error'; the bounded calls report it.
  client.on('error', () => undefined);
  const close = run.onClose(() => {
    void client.end().catch(() => undefined);
  });
  try {
    try {
      await run.bounded(client.connect(), `connect to ${where}`);
    } catch (err) {
      run.add(
        name('connection'),
        'fail',
        `${postgresFailure(err, where, user, database, timeoutMs)}; it holds ${HOLDS[role]}`,
      );
      return;
    }
    const q = async <R extends pg.QueryResultRow>(text: string): Promise<R[]> =>
      (await run.bounded(client.query<R>(text), text)).rows;

    const [versionRow] = await q<{ version: string }>('SELECT version() AS version');
    const version = versionRow?.version ?? 'unknown';
    const cockroach = /cockroach/i.test(version);
    const product = cockroach
      ? (/CockroachDB \S+ \S+/.exec(version)?.[0] ?? 'CockroachDB')
      : (/^PostgreSQL \S+/.exec(version)?.[0] ?? version);
    run.add(name('connection'), 'ok', `${where} answers as user ${user}; it holds ${HOLDS[role]}`);
    const dialect = resolved.DATABASE_DIALECT;
    if (cockroach && dialect === 'postgres') {
      run.add(
        name('version'),
        'fail',
        `${where} runs ${product} but DATABASE_DIALECT is postgres: the advisory-lock statements fail there; set DATABASE_DIALECT=cockroach`,
      );
    } else if (!cockroach && dialect === 'cockroach') {
      run.add(
        name('version'),
        'warn',
        `${where} runs ${product} but DATABASE_DIALECT is cockroach: announces of one swarm are not serialized; set DATABASE_DIALECT=postgres`,
      );
    } else {
      run.add(name('version'), 'ok', `${where} runs ${product} (DATABASE_DIALECT ${dialect})`);
    }

    // Migrations: the store records each applied version in shoal_schema_migrations (postgres/migrations.ts).
    const [table] = await q<{ n: string | number }>(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'shoal_schema_migrations'",
    );
    const migrate =
      'run the migrations: start storage-api with PG_MIGRATE_ON_START=true, or run node packages/storage/src/postgres/migrate-cli.ts with the same DATABASE_URL';
    if (resolved.PG_QUERY_MIGRATE !== undefined) {
      run.add(
        name('migrations'),
        'ok',
        `${where} uses a custom schema (PG_QUERY_MIGRATE): its version is not recorded, so it is not checked`,
      );
    } else if (Number(table?.n ?? 0) === 0) {
      run.add(
        name('migrations'),
        'fail',
        `${where} has no Shoal schema (table shoal_schema_migrations missing): every store call fails; ${migrate}`,
      );
    } else {
      const done = new Set(
        (await q<{ version: number }>('SELECT version FROM shoal_schema_migrations')).map((r) =>
          Number(r.version),
        ),
      );
      const missing = MIGRATIONS.filter((m) => !done.has(m.version));
      const known = new Set(MIGRATIONS.map((m) => m.version));
      const unknown = [...done].filter((v) => !known.has(v)).sort((a, b) => a - b);
      const latest = Math.max(...MIGRATIONS.map((m) => m.version));
      if (missing.length > 0) {
        run.add(
          name('migrations'),
          'fail',
          `${where} is missing migration${missing.length === 1 ? '' : 's'} ${missing.map((m) => `${m.version} (${m.name})`).join(', ')}: the schema is outdated; ${migrate}`,
        );
      } else if (unknown.length > 0) {
        run.add(
          name('migrations'),
          'warn',
          `${where} has migration${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')} this build does not know (applied by a newer Shoal); this build expects version ${latest}`,
        );
      } else {
        run.add(
          name('migrations'),
          'ok',
          `${where} has every migration applied (schema version ${latest})`,
        );
      }
    }

    if (durable(role) && Number(table?.n ?? 0) > 0 && resolved.PG_QUERY_MIGRATE === undefined)
      await backupAgeCheck(run, q, name('backup'), where);

    const [iso] = await q<{ default_transaction_isolation: string }>(
      'SHOW default_transaction_isolation',
    );
    const level = (iso?.default_transaction_isolation ?? 'unknown').toLowerCase();
    const wanted = resolved.PG_ISOLATION_LEVEL;
    if (wanted !== 'server-default' && wanted !== level) {
      run.add(
        name('isolation'),
        'warn',
        `${where} runs transactions at ${level.toUpperCase()} although PG_ISOLATION_LEVEL asks for ${wanted.toUpperCase()} (a connection pooler dropping startup options?)`,
      );
    } else {
      run.add(
        name('isolation'),
        'ok',
        `${where} runs transactions at ${level.toUpperCase()} (PG_ISOLATION_LEVEL ${wanted})`,
      );
    }

    await clockCheck(run, name('clock'), where, async () => {
      const [now] = await q<{ ms: string | number }>(
        'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms',
      );
      return Number(now?.ms);
    });
  } catch (err) {
    stoppedAnswering(run, name('checks'), where, err);
  } finally {
    close();
  }
}
