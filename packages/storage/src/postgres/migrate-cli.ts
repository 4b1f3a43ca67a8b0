// Standalone schema migration (docs/postgres.md: migrations run on start
// or by a command), for a Kubernetes Job or an operator before a rollout:
//   DATABASE_URL=postgres://... node packages/storage/src/postgres/migrate-cli.ts [--config file.yaml]
// Same settings as the services (DATABASE_*, PG_*). Exit codes: 0 done,
// 2 invalid config, 1 database error. Prints one JSON line. Safe beside
// replicas migrating at the same time (docs/postgres.md "Many processes at once").
import { isConfigError, loadConfig } from '@shoal/config';
import { isStoreError } from '../errors.ts';
import { PostgresStoreConfigSchema, checkPostgresStoreConfig } from './config.ts';
import { createPostgresStore } from './store.ts';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig(PostgresStoreConfigSchema, { check: checkPostgresStoreConfig });
  } catch (err) {
    if (isConfigError(err)) {
      process.stderr.write(
        `${JSON.stringify({ ok: false, code: err.code, problems: err.violations })}\n`,
      );
      return 2;
    }
    throw err;
  }
  let store;
  try {
    // peer lifetime plays no part in migrations.
    store = await createPostgresStore(
      // checkPostgresStoreConfig above already refused a missing DATABASE_URL.
      {
        ...config,
        DATABASE_URL: config.DATABASE_URL ?? '',
        PG_MIGRATE_ON_START: false,
        PG_POOL_SIZE: 1,
      },
      { peerLifetimeSeconds: 1 },
    );
    const result = await store.migrate();
    process.stdout.write(`${JSON.stringify({ ok: true, dialect: store.dialect, ...result })}\n`);
    return 0;
  } catch (err) {
    const code = isStoreError(err) ? err.code : 'STORE_ERR_INTERNAL';
    const problems = isStoreError(err) && 'problems' in err ? err.problems : undefined;
    process.stderr.write(
      `${JSON.stringify({ ok: false, code, message: (err as Error).message, problems })}\n`,
    );
    return code === 'STORE_ERR_CONFIG' ? 2 : 1;
  } finally {
    await store?.close();
  }
}

process.exitCode = await main();
