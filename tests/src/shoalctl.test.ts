// shoalctl against a real storage-api (in-process, on a loopback port) for
// every command of docs/policy.md "CLI": what the operator reads, the exit
// status, and that the change really reached the policy snapshot.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announceOf, infoHashOf } from '@shoal/storage/conformance';
import { createCompositeStore } from '@shoal/storage/composite';
import { createMemoryStore, type MemoryStore } from '@shoal/storage/memory';
import { createRedisStore, redisStoreConfig, type RedisStore } from '@shoal/storage/redis';
import { buildStorageApi, loadStorageApiConfig, type StorageApi } from '@shoal/storage-api';
import { freeTcpPort } from '@shoal/testing/ports';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { run } from '@shoal/cli';
import { repoRoot } from '@shoal/testing/processes';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';

const TOKEN = 'gateway-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';
const BIN = join(repoRoot, 'packages/cli/bin/shoalctl.ts');

function config(env: Record<string, string>, admin: boolean) {
  return loadStorageApiConfig({
    env: {
      ...LOOPBACK_ENV,
      STORAGE_API_TOKEN: TOKEN,
      ...(admin ? { STORAGE_API_ADMIN_TOKEN: ADMIN } : {}),
      ...env,
    },
    argv: [],
  });
}

type Deps = Omit<Parameters<typeof buildStorageApi>[0], 'config' | 'logger' | 'registry'>;

async function start(
  deps: Deps & { env?: Record<string, string>; admin?: boolean } = {},
): Promise<{ app: StorageApi; url: string }> {
  const { env = {}, admin = true, ...rest } = deps;
  const app = buildStorageApi({
    config: config(env, admin),
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    ...rest,
  });
  const { port } = await app.listen();
  return { app, url: `http://127.0.0.1:${port}` };
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): { write(s: string): boolean; text: string } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

const hex = (n: number): string => infoHashOf(n).toString('hex');

let memory: MemoryStore;
let api: { app: StorageApi; url: string };
let dir: string;

async function shoalctl(
  args: string[],
  env: Record<string, string> = { SHOAL_URL: api.url, SHOAL_ADMIN_TOKEN: ADMIN },
): Promise<Result> {
  const stdout = sink();
  const stderr = sink();
  const code = await run(args, { env, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** What the gateways see: GET /v1/policy with the gateway token. */
async function snapshot(): Promise<{
  torrents: { allow: string[]; deny: string[] };
  clients: { allow: string[]; deny: string[] };
  passkeys: Array<[string, number | null]>;
}> {
  const r = await fetch(`${api.url}/v1/policy`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as never;
}

beforeAll(async () => {
  memory = createMemoryStore({ peerLifetimeSeconds: 1860 });
  api = await start({
    store: createCompositeStore({ peers: memory, data: memory, dataDriver: 'memory' }),
  });
  dir = await mkdtemp(join(tmpdir(), 'shoalctl-'));
});
afterAll(async () => {
  await api?.app.close();
  await memory?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('shoalctl approval lists', () => {
  it("torrents deny add / list / remove, reaching the gateways' snapshot", async () => {
    const h = hex(1);
    expect(await shoalctl(['torrents', 'deny', 'add', h, '--note', 'DMCA 2024-17'])).toEqual({
      code: 0,
      stdout: `added ${h} to torrents deny\n`,
      stderr: '',
    });
    // Adding again overwrites the note (the repository's semantics); the same note keeps it.
    expect((await shoalctl(['torrents', 'deny', 'add', h, '--note', 'DMCA 2024-17'])).stdout).toBe(
      `${h} was already on torrents deny (note updated)\n`,
    );
    expect((await snapshot()).torrents.deny).toContain(h);

    const list = await shoalctl(['torrents', 'deny', 'list']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^INFO HASH\s{2,}ADDED\s{2,}NOTE$/);
    expect(lines[1]).toMatch(new RegExp(`^${h}  \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  DMCA 2024-17$`));
    // Columns line up: NOTE starts where the note starts.
    expect(lines[0]!.indexOf('NOTE')).toBe(lines[1]!.indexOf('DMCA'));

    const asJson = JSON.parse((await shoalctl(['--json', 'torrents', 'deny', 'list'])).stdout) as {
      entries: Array<{ value: string; note?: string }>;
    };
    expect(asJson.entries).toEqual([expect.objectContaining({ value: h, note: 'DMCA 2024-17' })]);

    expect((await shoalctl(['torrents', 'deny', 'remove', h])).stdout).toBe(
      `removed ${h} from torrents deny\n`,
    );
    expect((await shoalctl(['torrents', 'deny', 'rm', h])).stdout).toBe(
      `${h} was not on torrents deny\n`,
    );
    expect((await snapshot()).torrents.deny).not.toContain(h);
    expect((await shoalctl(['torrents', 'deny', 'list'])).stdout).toBe('torrents deny is empty\n');
  });

  it('clients deny add -- -XX0001, and prefixes with URL-special characters', async () => {
    expect((await shoalctl(['clients', 'deny', 'add', '--', '-XX0001'])).stdout).toBe(
      'added -XX0001 to clients deny\n',
    );
    expect((await shoalctl(['clients', 'deny', 'add', '--', 'A/B%?#'])).stdout).toBe(
      'added A/B%?# to clients deny\n',
    );
    expect((await snapshot()).clients.deny.sort()).toEqual(['-XX0001', 'A/B%?#']);
    expect((await shoalctl(['clients', 'deny', 'remove', '--', 'A/B%?#'])).stdout).toBe(
      'removed A/B%?# from clients deny\n',
    );
    expect((await snapshot()).clients.deny).toEqual(['-XX0001']);
  });

  it("an API refusal prints the server's message and code, exit 1", async () => {
    const r = await shoalctl(['torrents', 'allow', 'add', 'not-a-hash']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: info hash must be 40 hex characters [POLICY_ERR_BAD_INFO_HASH]\n',
    });
  });

  it('torrents allow import: comments and blank lines skipped, bad lines named by line, nothing written, --replace', async () => {
    const bad = await file(
      'bad.txt',
      `# approved releases\n${hex(10)}\n\n${hex(11)} debian 12.5 netinst\nzz-not-hex\n${hex(12)}\n`,
    );
    const refused = await shoalctl(['torrents', 'allow', 'import', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('1 of 4 entries rejected, nothing written');
    expect(refused.stderr).toContain(
      'line 5: "zz-not-hex": info hash must be 40 hex characters [POLICY_ERR_BAD_INFO_HASH]',
    );
    expect(refused.stderr.trimEnd().endsWith('[POLICY_ERR_BAD_INFO_HASH]')).toBe(true);
    expect((await snapshot()).torrents.allow).toEqual([]);

    const good = await file(
      'good.txt',
      `# approved releases\n${hex(10)}\n\n${hex(11)} debian 12.5 netinst\n${hex(12)}\n`,
    );
    expect(await shoalctl(['torrents', 'allow', 'import', good])).toEqual({
      code: 0,
      stdout: 'torrents allow import of 3 entries: 3 added, 0 updated\n',
      stderr: '',
    });
    const listed = JSON.parse((await shoalctl(['torrents', 'allow', 'list', '--json'])).stdout) as {
      entries: Array<{ value: string; note?: string }>;
    };
    expect(listed.entries.find((e) => e.value === hex(11))?.note).toBe('debian 12.5 netinst');

    const smaller = await file('smaller.txt', `${hex(10)}\n${hex(13)}\n`);
    expect((await shoalctl(['torrents', 'allow', 'import', '--replace', smaller])).stdout).toBe(
      'torrents allow import of 2 entries: 1 added, 1 updated, 2 removed\n',
    );
    expect((await snapshot()).torrents.allow.sort()).toEqual([hex(10), hex(13)].sort());

    const missing = await shoalctl(['torrents', 'allow', 'import', join(dir, 'nope.txt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `error: cannot read ${join(dir, 'nope.txt')}: no such file [CLI_ERR_FILE]\n`,
    );
  });
});

describe('shoalctl passkeys', () => {
  it('add with --user and --ttl, list, remove', async () => {
    const before = Date.now();
    const added = await shoalctl(['passkeys', 'add', '--user', 'alice', '--ttl', '30d']);
    expect(added.code).toBe(0);
    const key = /^passkey\s+([0-9a-f]{32})$/m.exec(added.stdout)?.[1];
    expect(key).toBeDefined();
    expect(added.stdout).toMatch(/^user\s+alice$/m);
    const expires = Date.parse(/^expires\s+(\S+)$/m.exec(added.stdout)?.[1] ?? '');
    expect(expires).toBeGreaterThanOrEqual(before + 30 * 86_400_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000);
    expect((await snapshot()).passkeys).toContainEqual([key, expires]);

    const chosen = await shoalctl(['passkeys', 'add', '--passkey', 'bob-key-0001', '--json']);
    expect(JSON.parse(chosen.stdout)).toMatchObject({ passkey: 'bob-key-0001', expiresAt: null });

    const list = await shoalctl(['passkeys', 'list']);
    expect(list.stdout.split('\n')[0]).toMatch(/^PASSKEY\s+USER\s+CREATED\s+EXPIRES$/);
    expect(list.stdout).toMatch(new RegExp(`^${key}  alice\\s+\\S+Z\\s+\\S+Z$`, 'm'));
    expect(list.stdout).toMatch(/^bob-key-0001\s+-\s+\S+Z\s+never$/m);

    expect((await shoalctl(['passkeys', 'remove', key!])).stdout).toBe(`removed passkey ${key}\n`);
    expect((await shoalctl(['passkeys', 'remove', key!])).stdout).toBe(
      `passkey ${key} did not exist\n`,
    );
    expect((await snapshot()).passkeys.map(([k]) => k)).not.toContain(key);
  });

  it('--ttl takes 90s, 30m, 12h, 30d; anything else is a usage error (exit 2)', async () => {
    for (const [ttl, seconds] of [
      ['90s', 90],
      ['30m', 1800],
      ['12h', 43_200],
    ] as const) {
      const r = await shoalctl(['--json', 'passkeys', 'add', '--ttl', ttl]);
      const body = JSON.parse(r.stdout) as { createdAt: string; expiresAt: string };
      // The server reads its clock for the expiry and again for createdAt: a few ms apart.
      const lifetime = Date.parse(body.expiresAt) - Date.parse(body.createdAt);
      expect(lifetime).toBeGreaterThan(seconds * 1000 - 100);
      expect(lifetime).toBeLessThanOrEqual(seconds * 1000);
    }
    const bad = await shoalctl(['passkeys', 'add', '--ttl', '3y']);
    expect(bad).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'error: --ttl must be a positive number followed by s, m, h or d (90s, 30m, 12h, 30d), not "3y" [CLI_ERR_USAGE]\n',
    });
  });

  it('import from CSV: header optional, quoted fields, empty expiry = never, bad rows by line', async () => {
    const future = new Date(Date.now() + 86_400_000).toISOString();
    const withHeader = await file(
      'keys.csv',
      `passkey,user,expiresAt\n# staff\ncarol-key-0001,"Carol, admin",${future}\ndave-key-0001,dave,\n`,
    );
    expect((await shoalctl(['passkeys', 'import', withHeader])).stdout).toBe(
      'passkeys import of 2 passkeys: 2 added, 0 updated\n',
    );
    const listed = JSON.parse((await shoalctl(['passkeys', 'list', '--json'])).stdout) as {
      passkeys: Array<{ passkey: string; user?: string; expiresAt: string | null }>;
    };
    expect(listed.passkeys.find((p) => p.passkey === 'carol-key-0001')).toMatchObject({
      user: 'Carol, admin',
      expiresAt: future,
    });
    expect(listed.passkeys.find((p) => p.passkey === 'dave-key-0001')).toMatchObject({
      user: 'dave',
      expiresAt: null,
    });

    const noHeader = await file('nohdr.csv', `erin-key-0001,erin\ncarol-key-0001\n`);
    expect((await shoalctl(['passkeys', 'import', noHeader])).stdout).toBe(
      'passkeys import of 2 passkeys: 1 added, 1 updated\n',
    );

    const badRows = await file('bad.csv', `frank-key-0001,frank,2001-01-01T00:00:00Z\nshort\n`);
    const refused = await shoalctl(['passkeys', 'import', badRows]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('line 1: "frank-key-0001"');
    expect(refused.stderr).toContain('[POLICY_ERR_BAD_EXPIRY]');
    expect(refused.stderr).toContain('line 2: "short"');
    expect(refused.stderr).toContain('[POLICY_ERR_BAD_PASSKEY]');
    expect((await snapshot()).passkeys.map(([k]) => k)).not.toContain('frank-key-0001');

    const tooMany = await file('wide.csv', 'a-key-00001,u,,extra\n');
    expect(await shoalctl(['passkeys', 'import', tooMany])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'error: line 1: 4 fields, expected at most 3 (passkey,user,expiresAt) [CLI_ERR_FILE]\n',
    });
  });
});

describe('shoalctl stats and top', () => {
  it('print aligned tables of what the peer store holds', async () => {
    for (let p = 1; p <= 3; p++)
      await memory.announce(announceOf({ swarm: 7, peer: p, seeder: p === 1, event: 'started' }));
    await memory.announce(announceOf({ swarm: 8, peer: 9, family: 6, event: 'started' }));

    const stats = await shoalctl(['stats']);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toBe(
      [
        '          IPv4  IPv6  TOTAL',
        'torrents                  2',
        'seeders      1     0      1',
        'leechers     2     1      3',
        'peers        3     1      4',
        '',
      ].join('\n'),
    );
    expect(JSON.parse((await shoalctl(['stats', '--json'])).stdout)).toEqual({
      torrents: 2,
      seeders: { v4: 1, v6: 0 },
      leechers: { v4: 2, v6: 1 },
    });

    const top = await shoalctl(['top', '-n', '1']);
    expect(top.code).toBe(0);
    expect(top.stdout).toBe(
      `INFO HASH                                 SEEDERS  LEECHERS  DOWNLOADED\n${hex(7)}        1         2           0\n`,
    );
    const both = JSON.parse((await shoalctl(['top', '--json'])).stdout) as {
      torrents: Array<{ infoHash: string }>;
    };
    expect(both.torrents.map((t) => t.infoHash)).toEqual([hex(7), hex(8)]);

    expect((await shoalctl(['top', '-n', '0'])).code).toBe(2);
  });
});

describe('shoalctl doctor', () => {
  it('prints one line per check with its mark and the clock skew; warnings exit 0', async () => {
    const r = await shoalctl(['doctor']);
    expect(r.code).toBe(0);
    // The memory data store is a warning: passkeys and lists vanish on restart.
    expect(r.stdout).toMatch(/^WARN {2}memory store: .*lost on every restart/m);
    expect(r.stdout).toMatch(
      /^ok {4}shoalctl clock: storage-api's clock is 0\.\d\d s (ahead of|behind) this machine's/m,
    );
    expect(r.stdout).toMatch(/\n0 failures, 1 warning, 1 ok\n$/);
  });

  it('exit 1 when a store check fails (Redis without persistence holding the data)', async () => {
    const redis: RedisServer = await startRedis({ args: ['--appendonly', 'no'] });
    let store: RedisStore | undefined;
    let failing: { app: StorageApi; url: string } | undefined;
    try {
      const env = {
        DATA_STORE_DRIVER: 'redis',
        REDIS_ADDRESSES: redis.address,
        REDIS_PASSWORD: redis.password!,
      };
      store = await createRedisStore(
        redisStoreConfig({ REDIS_ADDRESSES: [redis.address], REDIS_PASSWORD: redis.password }),
        { peerLifetimeSeconds: 1860 },
      );
      failing = await start({
        env,
        store: createCompositeStore({ peers: memory, data: store, dataDriver: 'redis' }),
      });
      const r = await shoalctl(['doctor'], { SHOAL_URL: failing.url, SHOAL_ADMIN_TOKEN: ADMIN });
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(
        `FAIL  redis ${redis.address} persistence: Redis at ${redis.address} has no persistence (appendonly no, no save points): download counts and KV data kept there are lost on restart`,
      );
      expect(r.stdout).toMatch(/^ok {4}redis \S+ connection: /m);

      const asJson = await shoalctl(['doctor', '--json'], {
        SHOAL_URL: failing.url,
        SHOAL_ADMIN_TOKEN: ADMIN,
      });
      expect(asJson.code).toBe(1);
      const body = JSON.parse(asJson.stdout) as {
        checks: Array<{ status: string }>;
        serverTimeMs: number;
        clientSkewMs: number;
      };
      expect(body.checks.some((c) => c.status === 'fail')).toBe(true);
      expect(Math.abs(body.clientSkewMs)).toBeLessThan(1000);
    } finally {
      await failing?.app.close();
      await store?.close();
      await redis.close();
    }
  });
});

describe('shoalctl connection and credentials', () => {
  it('connection refused is explained in words', async () => {
    const port = await freeTcpPort();
    const r = await shoalctl(['stats'], {
      SHOAL_URL: `http://127.0.0.1:${port}`,
      SHOAL_ADMIN_TOKEN: ADMIN,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: cannot reach storage-api at http://127.0.0.1:${port}: connection refused (nothing listens there: is storage-api running, and are --url / SHOAL_URL right?) [CLI_ERR_CONNECT]\n`,
    );
  });

  it('missing URL or token is a usage error; --url and --token win over the environment', async () => {
    expect((await shoalctl(['stats'], {})).code).toBe(2);
    const noToken = await shoalctl(['stats'], { SHOAL_URL: api.url });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('no admin token');
    const flags = await shoalctl(['--url', api.url, '--token', ADMIN, 'stats', '--json'], {
      SHOAL_URL: 'http://127.0.0.1:9',
      SHOAL_ADMIN_TOKEN: 'wrong',
    });
    expect(flags.code).toBe(0);
  });

  it('the gateway token or a wrong token is refused; an API without an admin token says so', async () => {
    const gatewayToken = await shoalctl(['passkeys', 'list'], {
      SHOAL_URL: api.url,
      SHOAL_ADMIN_TOKEN: TOKEN,
    });
    expect(gatewayToken.code).toBe(1);
    expect(gatewayToken.stdout).toBe('');
    expect(gatewayToken.stderr).toMatch(/^error: .+ \[RPC_ERR_UNAUTHORIZED\]\n$/);
    const plain = createMemoryStore({ peerLifetimeSeconds: 1860 });
    const disabled = await start({
      admin: false,
      store: createCompositeStore({ peers: plain, data: plain, dataDriver: 'memory' }),
    });
    try {
      const r = await shoalctl(['passkeys', 'list'], {
        SHOAL_URL: disabled.url,
        SHOAL_ADMIN_TOKEN: ADMIN,
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[RPC_ERR_ADMIN_DISABLED\]\n$/);
    } finally {
      await disabled.app.close();
      await plain.close();
    }
  });

  it('unknown commands and options are usage errors (exit 2); --help exits 0', async () => {
    const unknown = await shoalctl(['torrents', 'maybe', 'add']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('[CLI_ERR_USAGE]');
    expect((await shoalctl(['stats', '--bogus'])).code).toBe(2);
    const help = await shoalctl(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('passkeys');
  });
});

describe('bin/shoalctl.ts', () => {
  it('runs as an executable (shebang) with the environment', async () => {
    const env = {
      ...process.env,
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      SHOAL_URL: api.url,
      SHOAL_ADMIN_TOKEN: ADMIN,
    };
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(BIN, ['--json', 'stats'], { env, timeout: 20_000 }, (err, stdout, stderr) => {
          resolve({
            code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1,
            stdout,
            stderr,
          });
        });
      },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(typeof (JSON.parse(result.stdout) as { torrents: unknown }).torrents).toBe('number');

    const usage = await new Promise<number>((resolve) => {
      execFile(BIN, ['passkeys', 'add', '--ttl', 'soon'], { env }, (err) =>
        resolve(err === null ? 0 : Number(err.code)),
      );
    });
    expect(usage).toBe(2);
  });
});
