// The certificates the chart generates, used for real (no CockroachDB binary
// here, so a PostgreSQL server stands in, speaking the same wire protocol):
// the server presents the generated node certificate and accepts the Shoal
// user only by its client certificate; storage-api's store, configured with
// the env the chart renders (DATABASE_URL with sslmode=verify-full, PG_TLS_*
// pointing at the mounted user Secret), connects over TLS as that user. A
// CA from another render is refused.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStoreError } from '@shoal/storage';
import { createPostgresStore } from '@shoal/storage/postgres';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { containerEnv, ensureHelm, find, renderChart, type K8sObject } from './harness/helm.ts';

type Secret = K8sObject & { data: Record<string, string> };
const MOUNT = '/etc/shoal/db-tls';

let server: PostgresServer;
let dir = '';
let env: Record<string, string>;
let otherCa = '';

/** The Secret's keys as files, as the kubelet mounts them. */
async function mountSecret(s: Secret, at: string): Promise<void> {
  await mkdir(at, { recursive: true });
  for (const [k, v] of Object.entries(s.data))
    await writeFile(join(at, k), Buffer.from(v, 'base64'));
}

function asServerUser(path: string, mode: number): void {
  chmodSync(path, mode);
  if (userInfo().uid !== 0) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(path, uid, gid);
}

beforeAll(async () => {
  await ensureHelm();
  const objects = await renderChart(4);
  const other = await renderChart(4);
  dir = await mkdtemp(join(tmpdir(), 'shoal-crdb-certs-'));
  const node = find(objects, 'Secret', 'shoal-cockroachdb-node-tls') as Secret;
  await mountSecret(node, join(dir, 'node'));
  await mountSecret(
    find(objects, 'Secret', 'shoal-cockroachdb-user-tls') as Secret,
    join(dir, 'user'),
  );
  otherCa = join(dir, 'other-ca.crt');
  await writeFile(
    otherCa,
    Buffer.from(
      (find(other, 'Secret', 'shoal-cockroachdb-ca') as Secret).data['ca.crt']!,
      'base64',
    ),
  );
  env = containerEnv(objects, find(objects, 'Deployment', 'shoal-storage-api'), 'storage-api');

  server = await startPostgres();
  asServerUser(dir, 0o755);
  asServerUser(join(dir, 'node'), 0o755);
  for (const f of ['ca.crt', 'tls.crt']) asServerUser(join(dir, 'node', f), 0o644);
  asServerUser(join(dir, 'node', 'tls.key'), 0o600);
  const admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  try {
    await admin.query('CREATE USER shoal');
    await admin.query('CREATE DATABASE shoal OWNER shoal');
    await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${join(dir, 'node', 'tls.crt')}'`);
    await admin.query(`ALTER SYSTEM SET ssl_key_file = '${join(dir, 'node', 'tls.key')}'`);
    await admin.query(`ALTER SYSTEM SET ssl_ca_file = '${join(dir, 'node', 'ca.crt')}'`);
    await admin.query('ALTER SYSTEM SET ssl = on');
    // The Shoal user only over TLS with a client certificate whose CN is its name.
    const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
    const rest = await readFile(hba, 'utf8');
    await writeFile(
      hba,
      `hostssl all shoal 127.0.0.1/32 cert\nhost all shoal 127.0.0.1/32 reject\n${rest}`,
    );
    await admin.query('SELECT pg_reload_conf()');
  } finally {
    await admin.end();
  }
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

// The KV get query replaced by one that reports this session's transport and user.
const SESSION = {
  PG_QUERY_KV_GET: `SELECT (CASE WHEN ssl THEN 'tls' ELSE 'plain' END) || ' ' || current_user AS value
    FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND @context::TEXT IS NOT NULL AND @key::TEXT IS NOT NULL`,
};

/** storage-api's store with the chart's database env, the host and port the local ones. */
async function session(caFile?: string): Promise<string | undefined> {
  const url = new URL(env.DATABASE_URL!);
  // "localhost" is one of the node certificate's names (docs/cockroachdb.md).
  url.hostname = 'localhost';
  url.port = String(server.port);
  const local = (p: string | undefined): string => (p ?? '').replace(MOUNT, join(dir, 'user'));
  const store = await createPostgresStore(
    {
      DATABASE_URL: url.toString(),
      DATABASE_DIALECT: 'postgres',
      PG_TLS_CA_FILE: caFile ?? local(env.PG_TLS_CA_FILE),
      PG_TLS_CERT_FILE: local(env.PG_TLS_CERT_FILE),
      PG_TLS_KEY_FILE: local(env.PG_TLS_KEY_FILE),
      ...SESSION,
    },
    { peerLifetimeSeconds: 60 },
  );
  try {
    return await store.get('any', 'any');
  } finally {
    await store.close();
  }
}

describe("the chart's generated certificates on a real server", () => {
  it('storage-api verifies the server and logs in as the Shoal user by its certificate', async () => {
    expect(new URL(env.DATABASE_URL!).searchParams.get('sslmode')).toBe('verify-full');
    let answer: string | undefined;
    // The reload that turns TLS on is asynchronous: ask until it has applied.
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        answer = await session();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(answer).toBe('tls shoal');
  });

  it("refuses a server whose certificate another render's CA did not sign", async () => {
    const err: unknown = await session(otherCa).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStoreError(err) && err.code).toBe('STORE_ERR_UNAVAILABLE');
    // Refused by the certificate check, not by anything else on the way.
    const causes: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = e.cause) causes.push(e.message);
    expect(causes.join(' / ')).toMatch(/certificate/i);
  });
});
