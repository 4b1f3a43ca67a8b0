// Replicas of storage-api and gc-worker booting together on an empty database
// (a fresh install, a new namespace): each creates the schema it needs at the
// same moment, as separate OS processes, and all must come up. Concurrent
// CREATE TABLE IF NOT EXISTS races in PostgreSQL (42710, 23505, 42P07) unless
// schema creation is serialized (docs/postgres.md "Schema and migrations").
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';

const REPLICAS = 8;
// Fresh databases booted in turn by the same processes: the race depends on
// how the processes happen to be scheduled, so one round alone can miss it.
const ROUNDS = 12;
const script = fileURLToPath(new URL('./boot-replica.ts', import.meta.url));

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server.stop();
});

async function sql(url: string, text: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(text)).rows;
  } finally {
    await client.end();
  }
}

interface Replica {
  child: ChildProcessWithoutNullStreams;
  lines: Interface;
  stderr: () => string;
}

function startReplica(): Replica {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', script], {
    env: { PATH: process.env.PATH ?? '' },
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return { child, lines: createInterface({ input: child.stdout }), stderr: () => stderr };
}

/** The replica's next stdout line (it answers one line per request). */
async function nextLine(r: Replica): Promise<string> {
  const it = r.lines[Symbol.asyncIterator]();
  const next = await it.next();
  if (next.done === true) throw new Error(`replica exited: ${r.stderr()}`);
  return next.value;
}

describe('schema creation by replicas booting at once', () => {
  it(`${REPLICAS} processes migrating and creating the lease table on one empty database at once all succeed, and the schema is complete`, async () => {
    const replicas = Array.from({ length: REPLICAS }, startReplica);
    try {
      // Every process has loaded its modules before any round starts.
      for (const line of await Promise.all(replicas.map(nextLine))) expect(line).toBe('ready');
      for (let round = 0; round < ROUNDS; round++) {
        const url = await server.createDatabase();
        for (const r of replicas) r.child.stdin.write(`${url}\n`);
        const answers = (await Promise.all(replicas.map(nextLine))).map(
          (line) => JSON.parse(line) as { ok: boolean; held: boolean | null; errors: unknown[] },
        );
        expect({ round, answers }).toEqual({
          round,
          answers: answers.map((a) => ({ ok: true, held: a.held, errors: [] })),
        });
        expect(answers.filter((a) => a.held === true)).toHaveLength(1);
        expect(
          await sql(
            url,
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'shoal%' ORDER BY 1",
          ),
        ).toEqual(
          [
            'shoal_download_receipts',
            'shoal_downloads',
            'shoal_kv',
            'shoal_leases',
            'shoal_peers',
            'shoal_rate_counts',
            'shoal_schema_migrations',
          ].map((tablename) => ({ tablename })),
        );
        expect(
          await sql(
            url,
            "SELECT indexname FROM pg_indexes WHERE tablename = 'shoal_peers' ORDER BY 1",
          ),
        ).toEqual(
          ['shoal_peers_expiry', 'shoal_peers_pkey', 'shoal_peers_sample'].map((indexname) => ({
            indexname,
          })),
        );
        expect(
          await sql(url, 'SELECT version FROM shoal_schema_migrations ORDER BY version'),
        ).toEqual([1, 2, 3, 4, 5].map((version) => ({ version })));
      }
    } finally {
      for (const r of replicas) r.child.stdin.end();
      for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    }
  }, 120_000);
});
