// TLS options (docs/postgres.md): a PostgreSQL serving a self-signed
// certificate; the store must verify it against PG_TLS_CA_FILE, refuse it
// without, and really talk TLS (the server's pg_stat_ssl says so).
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStoreError } from '../errors.ts';
import type { PostgresStoreConfigInput } from './config.ts';
import { createPostgresStore } from './store.ts';

let server: PostgresServer;
let url: string;
beforeAll(async () => {
  server = await startPostgres({ tls: true });
  url = await server.createDatabase();
});
afterAll(async () => {
  await server?.stop();
});

// The KV get query replaced by one that reports this session's transport.
const TRANSPORT = {
  PG_QUERY_KV_GET: `SELECT CASE WHEN ssl THEN 'tls' ELSE 'plain' END AS value FROM pg_stat_ssl
    WHERE pid = pg_backend_pid() AND @context::TEXT IS NOT NULL AND @key::TEXT IS NOT NULL`,
};

async function transport(config: Partial<PostgresStoreConfigInput>): Promise<string | undefined> {
  const store = await createPostgresStore(
    { DATABASE_URL: url, ...TRANSPORT, ...config },
    { peerLifetimeSeconds: 60 },
  );
  try {
    return await store.get('any', 'any');
  } finally {
    await store.close();
  }
}

describe('TLS', () => {
  it('verifies the server against PG_TLS_CA_FILE and uses TLS', async () => {
    expect(await transport({ PG_TLS: true, PG_TLS_CA_FILE: server.tlsCaFile as string })).toBe(
      'tls',
    );
  });

  it('refuses an untrusted server certificate with STORE_ERR_UNAVAILABLE', async () => {
    const err: unknown = await transport({ PG_TLS: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStoreError(err) && err.code).toBe('STORE_ERR_UNAVAILABLE');
  });

  it('PG_TLS_REJECT_UNAUTHORIZED=false accepts it; sslmode in the URL alone also turns TLS on', async () => {
    expect(await transport({ PG_TLS: true, PG_TLS_REJECT_UNAUTHORIZED: false })).toBe('tls');
    expect(await transport({ DATABASE_URL: `${url}?sslmode=no-verify` })).toBe('tls');
    expect(await transport({})).toBe('plain');
  });
});
