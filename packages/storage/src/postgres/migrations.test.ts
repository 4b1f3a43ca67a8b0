// Schema creation by many processes at once, the parts that need no server:
// which statements each dialect runs, and CockroachDB's bounded retry (no
// CockroachDB binary runs in the test harness; PostgreSQL's lock is tested
// for real in schema-race.test.ts).
import { describe, expect, it } from 'vitest';
import {
  SCHEMA_LOCK_KEY,
  SCHEMA_LOCK_SQL,
  SCHEMA_RACE_ATTEMPTS,
  retrySchemaRace,
  schemaStatements,
} from './migrations.ts';

const raceError = (code: string): Error & { code: string } =>
  Object.assign(new Error(`SQLSTATE ${code}`), { code });

describe('schema creation statements', () => {
  it('PostgreSQL: one transaction that first takes the transaction-scoped advisory lock', () => {
    expect(schemaStatements('postgres', ['CREATE TABLE IF NOT EXISTS t (a INT4)'])).toEqual([
      { text: 'BEGIN' },
      { text: SCHEMA_LOCK_SQL, values: [SCHEMA_LOCK_KEY] },
      { text: 'CREATE TABLE IF NOT EXISTS t (a INT4)' },
      { text: 'COMMIT' },
    ]);
    expect(SCHEMA_LOCK_SQL).toContain('pg_advisory_xact_lock');
  });

  it('CockroachDB: the statements alone (its advisory lock functions are missing or no-ops)', () => {
    expect(schemaStatements('cockroach', ['CREATE TABLE IF NOT EXISTS t (a INT4)'])).toEqual([
      { text: 'CREATE TABLE IF NOT EXISTS t (a INT4)' },
    ]);
  });
});

describe('retrySchemaRace', () => {
  it('CockroachDB: runs again after each race code until it succeeds', async () => {
    for (const code of ['40001', '42710', '42P07', '23505']) {
      let calls = 0;
      const out = await retrySchemaRace('cockroach', () => {
        calls++;
        return calls < 3 ? Promise.reject(raceError(code)) : Promise.resolve('done');
      });
      expect(out).toBe('done');
      expect(calls).toBe(3);
    }
  });

  it('CockroachDB: gives up after a bounded number of attempts with the last error', async () => {
    let calls = 0;
    const err = await retrySchemaRace('cockroach', () => {
      calls++;
      return Promise.reject(raceError('40001'));
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '40001' });
    expect(calls).toBe(SCHEMA_RACE_ATTEMPTS);
  });

  it('never retries other errors, nor anything on PostgreSQL (the lock rules races out there)', async () => {
    for (const [dialect, code] of [
      ['cockroach', '42601'],
      ['postgres', '42710'],
    ] as const) {
      let calls = 0;
      const err = await retrySchemaRace(dialect, () => {
        calls++;
        return Promise.reject(raceError(code));
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code });
      expect(calls).toBe(1);
    }
  });
});
