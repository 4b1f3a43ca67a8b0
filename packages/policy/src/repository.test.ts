import { createMemoryStore } from '@shoal/storage/memory';
import type { DataStore } from '@shoal/storage';
import { describe, expect, it } from 'vitest';
import { PolicyError } from './errors.ts';
import { createPolicyRepository } from './repository.ts';
import { META_CONTEXT, PASSKEYS_CONTEXT, REVISION_KEY, approvalContext } from './types.ts';

const H1 = 'aa'.repeat(20);
const H2 = 'BB'.repeat(20);
const H3 = '0123456789abcdef0123456789abcdef01234567';
const T0 = 1_700_000_000_000;

function setup(): {
  store: DataStore;
  repo: ReturnType<typeof createPolicyRepository>;
  clock: { now: number };
} {
  const clock = { now: T0 };
  const store = createMemoryStore({ peerLifetimeSeconds: 60 });
  return { store, repo: createPolicyRepository(store, () => clock.now), clock };
}

/** Awaits fn and returns the PolicyError it rejects with. */
async function policyError(fn: () => Promise<unknown>): Promise<PolicyError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return err as PolicyError;
  }
  throw new Error('expected a PolicyError, nothing was thrown');
}

describe('revision', () => {
  it("is '' before the first change, a new '<ms>-<12 hex>' after each change", async () => {
    const { repo } = setup();
    expect(await repo.revision()).toBe('');
    await repo.addApproval('torrents', 'deny', H1);
    const r1 = await repo.revision();
    expect(r1).toMatch(new RegExp(`^${T0}-[0-9a-f]{12}$`));
    await repo.addApproval('torrents', 'deny', H3);
    const r2 = await repo.revision();
    expect(r2).not.toBe(r1);
  });

  it('does not change on a no-op: same entry again, removing what is not there, same import', async () => {
    const { repo } = setup();
    await repo.addApproval('clients', 'allow', '-TR', 'transmission');
    const r = await repo.revision();
    expect(await repo.addApproval('clients', 'allow', '-TR', 'transmission')).toBe(false);
    expect(await repo.removeApproval('clients', 'allow', '-qB')).toBe(false);
    expect(await repo.removeApproval('torrents', 'deny', H1)).toBe(false);
    expect(await repo.removePasskey('nosuchpasskey')).toBe(false);
    expect(
      await repo.importApproval('clients', 'allow', [{ value: '-TR', note: 'transmission' }]),
    ).toEqual({ added: 0, updated: 1, removed: 0 });
    expect(await repo.importPasskeys([])).toEqual({ added: 0, updated: 0, removed: 0 });
    expect(await repo.revision()).toBe(r);
  });
});

describe('approval lists', () => {
  it('adds, lists (hashes lowercased), updates the note keeping addedAt, removes', async () => {
    const { repo, store, clock } = setup();
    expect(await repo.addApproval('torrents', 'deny', H2, 'dmca')).toBe(true);
    clock.now = T0 + 5000;
    expect(await repo.addApproval('torrents', 'deny', H1)).toBe(true);
    expect(await repo.listApproval('torrents', 'deny')).toEqual([
      { value: H1, addedAt: T0 + 5000 },
      { value: H2.toLowerCase(), note: 'dmca', addedAt: T0 },
    ]);
    expect(await store.get('policy.torrents.deny', H2.toLowerCase())).toBe(
      JSON.stringify({ addedAt: T0, note: 'dmca' }),
    );

    const before = await repo.revision();
    clock.now = T0 + 9000;
    expect(await repo.addApproval('torrents', 'deny', H2, 'court order')).toBe(false);
    expect(await repo.revision()).not.toBe(before);
    expect((await repo.listApproval('torrents', 'deny'))[1]).toEqual({
      value: H2.toLowerCase(),
      note: 'court order',
      addedAt: T0,
    });
    expect(await repo.removeApproval('torrents', 'deny', H2)).toBe(true);
    expect((await repo.listApproval('torrents', 'deny')).map((e) => e.value)).toEqual([H1]);
    // The other lists are separate contexts.
    expect(await repo.listApproval('torrents', 'allow')).toEqual([]);
  });

  it('stores client prefixes under the hex of their bytes, listing them as given', async () => {
    const { repo, store } = setup();
    await repo.addApproval('clients', 'deny', 'S58B~');
    await repo.addApproval('clients', 'deny', 'M7-2-2--', 'mainline');
    const hex = Buffer.from('S58B~').toString('hex');
    expect(await store.get(approvalContext('clients', 'deny'), hex)).toBe(
      JSON.stringify({ prefix: 'S58B~', addedAt: T0 }),
    );
    const values = (await repo.listApproval('clients', 'deny')).map((e) => e.value).sort();
    expect(values).toEqual(['M7-2-2--', 'S58B~']);
    expect(await repo.removeApproval('clients', 'deny', 'S58B~')).toBe(true);
  });

  it('rejects bad input with the matching code and writes nothing', async () => {
    const { repo, store } = setup();
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => repo.addApproval('torrents', 'deny', 'abc'), 'POLICY_ERR_BAD_INFO_HASH'],
      [() => repo.addApproval('torrents', 'deny', `${H1}00`), 'POLICY_ERR_BAD_INFO_HASH'],
      [() => repo.addApproval('torrents', 'deny', 'g'.repeat(40)), 'POLICY_ERR_BAD_INFO_HASH'],
      [() => repo.addApproval('clients', 'deny', ''), 'POLICY_ERR_BAD_CLIENT_PREFIX'],
      [() => repo.addApproval('clients', 'deny', '-T R'), 'POLICY_ERR_BAD_CLIENT_PREFIX'],
      [() => repo.addApproval('clients', 'deny', 'x'.repeat(21)), 'POLICY_ERR_BAD_CLIENT_PREFIX'],
      [() => repo.addApproval('clients', 'deny', '-TRé'), 'POLICY_ERR_BAD_CLIENT_PREFIX'],
      [() => repo.addApproval('torrents', 'deny', H1, 'n'.repeat(257)), 'POLICY_ERR_BAD_ENTRY'],
      [() => repo.addApproval('peers' as 'torrents', 'deny', H1), 'POLICY_ERR_BAD_LIST'],
      [() => repo.listApproval('torrents', 'maybe' as 'deny'), 'POLICY_ERR_BAD_LIST'],
      [() => repo.removeApproval('torrents', 'deny', 'zz'), 'POLICY_ERR_BAD_INFO_HASH'],
    ];
    for (const [fn, code] of cases) {
      expect((await policyError(fn)).code, code).toBe(code);
    }
    // 256 characters is the limit, not over it.
    expect(await repo.addApproval('torrents', 'deny', H1, 'n'.repeat(256))).toBe(true);
    expect(await store.list('policy.torrents.deny')).toHaveLength(1);
  });
});

describe('importApproval', () => {
  it('adds and updates, counting each; replace removes what the import leaves out', async () => {
    const { repo } = setup();
    await repo.addApproval('torrents', 'allow', H1, 'old');
    await repo.addApproval('torrents', 'allow', H3);
    const result = await repo.importApproval('torrents', 'allow', [
      { value: H1, note: 'new' },
      { value: H2 },
    ]);
    expect(result).toEqual({ added: 1, updated: 1, removed: 0 });
    expect((await repo.listApproval('torrents', 'allow')).map((e) => [e.value, e.note])).toEqual([
      [H3, undefined],
      [H1, 'new'],
      [H2.toLowerCase(), undefined],
    ]);
    const r = await repo.revision();
    expect(
      await repo.importApproval('torrents', 'allow', [{ value: H2.toLowerCase() }], {
        replace: true,
      }),
    ).toEqual({ added: 0, updated: 1, removed: 2 });
    expect(await repo.revision()).not.toBe(r);
    expect((await repo.listApproval('torrents', 'allow')).map((e) => e.value)).toEqual([
      H2.toLowerCase(),
    ]);
  });

  it('writes nothing, not even a revision, when any entry is bad; lists every problem', async () => {
    const { repo, store } = setup();
    await repo.addApproval('clients', 'allow', '-TR');
    const r = await repo.revision();
    const err = await policyError(() =>
      repo.importApproval(
        'clients',
        'allow',
        [
          { value: '-qB' },
          { value: 'has space' },
          { value: '-DE', note: 'x'.repeat(300) },
          { value: '-UT', extra: 1 } as { value: string },
          { value: '-LT' },
        ],
        { replace: true },
      ),
    );
    expect(err.code).toBe('POLICY_ERR_BAD_CLIENT_PREFIX');
    expect(err.problems).toEqual([
      { index: 1, code: 'POLICY_ERR_BAD_CLIENT_PREFIX', value: 'has space' },
      { index: 2, code: 'POLICY_ERR_BAD_ENTRY', value: '-DE' },
      { index: 3, code: 'POLICY_ERR_BAD_ENTRY', value: '-UT' },
    ]);
    expect(await repo.revision()).toBe(r);
    expect((await store.list('policy.clients.allow')).map(([k]) => k)).toEqual([
      Buffer.from('-TR').toString('hex'),
    ]);
  });

  it('counts a value listed twice in one import once (the last note wins)', async () => {
    const { repo } = setup();
    expect(
      await repo.importApproval('torrents', 'deny', [
        { value: H1, note: 'a' },
        { value: H1.toUpperCase(), note: 'b' },
      ]),
    ).toEqual({ added: 1, updated: 0, removed: 0 });
    expect(await repo.listApproval('torrents', 'deny')).toEqual([
      { value: H1, note: 'b', addedAt: T0 },
    ]);
  });

  it('writes a new revision after every entry write settled, even when one failed', async () => {
    const { store } = setup();
    const log: string[] = [];
    const failing: DataStore = {
      ...wrap(store),
      async put(c, k, v) {
        if (k === H2.toLowerCase()) throw new Error('disk full');
        // A slow write still in flight when the other one fails.
        if (k === H1) await new Promise((resolve) => setTimeout(resolve, 20));
        await store.put(c, k, v);
        log.push(c === META_CONTEXT ? 'revision' : k);
      },
    };
    const repo = createPolicyRepository(failing, () => T0);
    await expect(
      repo.importApproval('torrents', 'deny', [{ value: H1 }, { value: H2 }]),
    ).rejects.toThrow('disk full');
    expect(log).toEqual([H1, 'revision']);
    expect(await repo.revision()).not.toBe('');
  });
});

describe('passkeys', () => {
  it('creates a random 32-hex passkey, or the one given; lists and removes', async () => {
    const { repo, store } = setup();
    const a = await repo.createPasskey({});
    expect(a.passkey).toMatch(/^[0-9a-f]{32}$/);
    expect(a).toEqual({ passkey: a.passkey, createdAt: T0, expiresAt: null });
    const b = await repo.createPasskey({
      passkey: 'alice-key-1',
      user: 'alice',
      expiresAt: T0 + 1000,
    });
    expect(b).toEqual({
      passkey: 'alice-key-1',
      user: 'alice',
      createdAt: T0,
      expiresAt: T0 + 1000,
    });
    expect(await store.get(PASSKEYS_CONTEXT, 'alice-key-1')).toBe(
      JSON.stringify({ createdAt: T0, expiresAt: T0 + 1000, user: 'alice' }),
    );
    const listed = await repo.listPasskeys();
    expect(listed).toHaveLength(2);
    expect(listed).toContainEqual(a);
    expect(listed).toContainEqual(b);
    expect(await repo.removePasskey('alice-key-1')).toBe(true);
    expect(await repo.removePasskey('alice-key-1')).toBe(false);
    expect(await repo.listPasskeys()).toEqual([a]);
    expect((await repo.createPasskey({})).passkey).not.toBe(a.passkey);
  });

  it('re-creating an existing passkey keeps its createdAt and bumps the revision only on change', async () => {
    const { repo, clock } = setup();
    await repo.createPasskey({ passkey: 'bob-key-01', user: 'bob' });
    const r = await repo.revision();
    clock.now = T0 + 60_000;
    expect(await repo.createPasskey({ passkey: 'bob-key-01', user: 'bob' })).toEqual({
      passkey: 'bob-key-01',
      user: 'bob',
      createdAt: T0,
      expiresAt: null,
    });
    expect(await repo.revision()).toBe(r);
    await repo.createPasskey({ passkey: 'bob-key-01', user: 'bob', expiresAt: T0 + 120_000 });
    expect(await repo.revision()).not.toBe(r);
  });

  it('rejects bad passkeys, users and expiries', async () => {
    const { repo, clock } = setup();
    const cases: Array<[Parameters<typeof repo.createPasskey>[0], string]> = [
      [{ passkey: 'short' }, 'POLICY_ERR_BAD_PASSKEY'],
      [{ passkey: 'has/slash-in-it' }, 'POLICY_ERR_BAD_PASSKEY'],
      [{ passkey: 'k'.repeat(129) }, 'POLICY_ERR_BAD_PASSKEY'],
      [{ user: 'u'.repeat(257) }, 'POLICY_ERR_BAD_ENTRY'],
      [{ expiresAt: clock.now }, 'POLICY_ERR_BAD_EXPIRY'],
      [{ expiresAt: clock.now - 1 }, 'POLICY_ERR_BAD_EXPIRY'],
      [{ expiresAt: Number.NaN }, 'POLICY_ERR_BAD_EXPIRY'],
      [{ expiresAt: Number.POSITIVE_INFINITY }, 'POLICY_ERR_BAD_EXPIRY'],
      [{ expiresAt: '2030-01-01' as unknown as number }, 'POLICY_ERR_BAD_EXPIRY'],
    ];
    for (const [input, code] of cases) {
      expect((await policyError(() => repo.createPasskey(input))).code, JSON.stringify(input)).toBe(
        code,
      );
    }
    expect((await policyError(() => repo.removePasskey('no'))).code).toBe('POLICY_ERR_BAD_PASSKEY');
    expect(await repo.listPasskeys()).toEqual([]);
    expect(await repo.revision()).toBe('');
  });

  it('imports all or nothing; replace removes passkeys not in the import', async () => {
    const { repo, clock } = setup();
    await repo.createPasskey({ passkey: 'keep-me-01', user: 'old' });
    await repo.createPasskey({ passkey: 'drop-me-01' });
    const r = await repo.revision();
    const bad = await policyError(() =>
      repo.importPasskeys([{ passkey: 'fine-key-01' }, { passkey: 'fine-key-02', expiresAt: 5 }]),
    );
    expect(bad.code).toBe('POLICY_ERR_BAD_EXPIRY');
    expect(bad.problems).toEqual([
      { index: 1, code: 'POLICY_ERR_BAD_EXPIRY', value: 'fine-key-02' },
    ]);
    expect(await repo.revision()).toBe(r);
    expect((await repo.listPasskeys()).map((p) => p.passkey)).toEqual(['drop-me-01', 'keep-me-01']);

    clock.now = T0 + 1;
    expect(
      await repo.importPasskeys(
        [
          { passkey: 'keep-me-01', user: 'new', expiresAt: T0 + 10_000 },
          { passkey: 'fresh-key-1', expiresAt: null },
        ],
        { replace: true },
      ),
    ).toEqual({ added: 1, updated: 1, removed: 1 });
    expect(await repo.revision()).not.toBe(r);
    expect(await repo.listPasskeys()).toEqual([
      { passkey: 'fresh-key-1', createdAt: T0 + 1, expiresAt: null },
      { passkey: 'keep-me-01', user: 'new', createdAt: T0, expiresAt: T0 + 10_000 },
    ]);
  });
});

describe('snapshot', () => {
  it('holds every list and the passkeys with their expiry', async () => {
    const { repo } = setup();
    await repo.addApproval('torrents', 'allow', H1);
    await repo.addApproval('torrents', 'deny', H2);
    await repo.addApproval('clients', 'allow', '-TR');
    await repo.addApproval('clients', 'deny', 'S58B~');
    await repo.createPasskey({ passkey: 'carol-key-1', expiresAt: T0 + 5 });
    await repo.createPasskey({ passkey: 'dave-key-01' });
    expect(await repo.snapshot()).toEqual({
      revision: await repo.revision(),
      torrents: { allow: [H1], deny: [H2.toLowerCase()] },
      clients: { allow: ['-TR'], deny: ['S58B~'] },
      passkeys: [
        ['carol-key-1', T0 + 5],
        ['dave-key-01', null],
      ],
      links: [],
      bans: [],
    });
  });

  it('reads the revision before any list', async () => {
    const { store } = setup();
    const calls: string[] = [];
    const recording: DataStore = {
      ...wrap(store),
      async get(c, k) {
        calls.push(`get ${c}/${k}`);
        return store.get(c, k);
      },
      async list(c) {
        calls.push(`list ${c}`);
        return store.list(c);
      },
    };
    const repo = createPolicyRepository(recording, () => T0);
    await repo.addApproval('torrents', 'deny', H1);
    calls.length = 0;
    await repo.snapshot();
    expect(calls[0]).toBe(`get ${META_CONTEXT}/${REVISION_KEY}`);
    expect(calls.slice(1).sort()).toEqual([
      'list policy.bans',
      'list policy.clients.allow',
      'list policy.clients.deny',
      'list policy.links',
      'list policy.passkeys',
      'list policy.torrents.allow',
      'list policy.torrents.deny',
    ]);
  });

  it('writes the entries before the revision', async () => {
    const { store } = setup();
    const puts: string[] = [];
    const recording: DataStore = {
      ...wrap(store),
      async put(c, k, v) {
        puts.push(c);
        return store.put(c, k, v);
      },
      async delete(c, k) {
        puts.push(`delete ${c}`);
        return store.delete(c, k);
      },
    };
    const repo = createPolicyRepository(recording, () => T0);
    await repo.importApproval('torrents', 'deny', [{ value: H1 }, { value: H2 }]);
    await repo.removeApproval('torrents', 'deny', H1);
    await repo.createPasskey({});
    expect(puts).toEqual([
      'policy.torrents.deny',
      'policy.torrents.deny',
      META_CONTEXT,
      'delete policy.torrents.deny',
      META_CONTEXT,
      PASSKEYS_CONTEXT,
      META_CONTEXT,
    ]);
  });

  it('skips junk values written by hand and keeps every other entry', async () => {
    const { repo, store } = setup();
    await repo.addApproval('torrents', 'deny', H1);
    await repo.addApproval('clients', 'deny', '-XX');
    await repo.createPasskey({ passkey: 'good-key-01' });
    await store.put('policy.torrents.deny', H3, '{not json');
    await store.put('policy.torrents.deny', 'not-a-hash', JSON.stringify({ addedAt: 1 }));
    await store.put('policy.torrents.deny', 'cc'.repeat(20), JSON.stringify({ addedAt: 'x' }));
    await store.put('policy.clients.deny', Buffer.from('-YY').toString('hex'), '[]');
    await store.put('policy.clients.deny', 'abcd', JSON.stringify({ prefix: '-ZZ', addedAt: 1 }));
    await store.put(PASSKEYS_CONTEXT, 'junk-key-01', 'null');
    await store.put(
      PASSKEYS_CONTEXT,
      'junk-key-02',
      JSON.stringify({ createdAt: 1, expiresAt: 'soon' }),
    );
    await store.put(
      PASSKEYS_CONTEXT,
      'bad key!',
      JSON.stringify({ createdAt: 1, expiresAt: null }),
    );
    const snap = await repo.snapshot();
    expect(snap.torrents.deny).toEqual([H1]);
    expect(snap.clients.deny).toEqual(['-XX']);
    expect(snap.passkeys).toEqual([['good-key-01', null]]);
    expect((await repo.listApproval('torrents', 'deny')).map((e) => e.value)).toEqual([H1]);
    expect((await repo.listPasskeys()).map((p) => p.passkey)).toEqual(['good-key-01']);
    // A replace import clears junk along with everything else left out.
    expect(
      await repo.importApproval('torrents', 'deny', [{ value: H1 }], { replace: true }),
    ).toEqual({ added: 0, updated: 1, removed: 3 });
    expect((await store.list('policy.torrents.deny')).map(([k]) => k)).toEqual([H1]);
  });
});

/** A DataStore forwarding to another (spread does not copy class methods). */
function wrap(store: DataStore): DataStore {
  return {
    get: (c, k) => store.get(c, k),
    put: (c, k, v) => store.put(c, k, v),
    delete: (c, k) => store.delete(c, k),
    list: (c) => store.list(c),
    close: () => store.close(),
  };
}
