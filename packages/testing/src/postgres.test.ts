import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from './postgres.ts';

describe('startPostgres', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  it('gives each caller its own empty database', async () => {
    const a = await server.createDatabase();
    const b = await server.createDatabase();
    expect(a).not.toBe(b);
    await query(a, 'CREATE TABLE only_in_a (x int)');
    const inB = await query<{ n: string }>(
      b,
      "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'only_in_a'",
    );
    expect(inB[0]?.n).toBe('0');
  });

  it('keeps committed rows across restart() and answers again on the same URL', async () => {
    const url = await server.createDatabase();
    await query(url, 'CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)');
    await server.restart();
    const rows = await query<{ x: number }>(url, 'SELECT x FROM kept');
    expect(rows).toEqual([{ x: 42 }]);
  });

  it('refuses connections between stopServer() and start()', async () => {
    const url = await server.createDatabase();
    await server.stopServer();
    await expect(query(url, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await server.start();
    expect(await query(url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});
