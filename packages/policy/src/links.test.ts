import { createMemoryStore } from '@shoal/storage/memory';
import { describe, expect, it } from 'vitest';
import { compilePolicy, EMPTY_SNAPSHOT } from './compile.ts';
import { createPolicyRepository } from './repository.ts';
import { LINKS_CONTEXT } from './links.ts';

const hex = (c: string): string => c.repeat(40);

function repo() {
  const store = createMemoryStore({ peerLifetimeSeconds: 60 });
  return { store, repo: createPolicyRepository(store, () => 1_000) };
}

describe('hybrid links in the repository', () => {
  it('adds, lists, snapshots and removes by either hash, each change a new revision', async () => {
    const { repo: r } = repo();
    const before = await r.revision();
    expect(await r.addLink({ first: hex('a'), second: hex('B'), note: 'ubuntu' })).toBe(true);
    expect(await r.addLink({ first: hex('a'), second: hex('b'), note: 'ubuntu' })).toBe(false);
    expect(await r.revision()).not.toBe(before);
    expect(await r.listLinks()).toEqual([
      { first: hex('a'), second: hex('b'), note: 'ubuntu', addedAt: 1_000, learned: false },
    ]);
    expect((await r.snapshot()).links).toEqual([[hex('a'), hex('b')]]);
    expect(await r.removeLink(hex('b'))).toBe(true);
    expect(await r.removeLink(hex('b'))).toBe(false);
    expect(await r.listLinks()).toEqual([]);
  });

  it('refuses a hash in two links, a hash linked to itself, and bad hex, writing nothing', async () => {
    const { repo: r, store } = repo();
    await r.addLink({ first: hex('a'), second: hex('b') });
    await expect(r.addLink({ first: hex('c'), second: hex('b') })).rejects.toMatchObject({
      code: 'POLICY_ERR_LINK_CONFLICT',
    });
    await expect(r.addLink({ first: hex('b'), second: hex('d') })).rejects.toMatchObject({
      code: 'POLICY_ERR_LINK_CONFLICT',
    });
    await expect(r.addLink({ first: hex('c'), second: hex('c') })).rejects.toMatchObject({
      code: 'POLICY_ERR_LINK_CONFLICT',
    });
    await expect(
      r.importLinks([
        { first: hex('c'), second: hex('d') },
        { first: 'zz', second: hex('e') },
      ]),
    ).rejects.toMatchObject({ code: 'POLICY_ERR_BAD_INFO_HASH' });
    expect((await store.list(LINKS_CONTEXT)).length).toBe(1);
  });

  it('a learned link never replaces an imported one; import with replace removes the rest', async () => {
    const { repo: r } = repo();
    await r.addLink({ first: hex('a'), second: hex('b') });
    expect(await r.addLink({ first: hex('a'), second: hex('c') }, { learned: true })).toBe(false);
    expect(await r.addLink({ first: hex('d'), second: hex('e') }, { learned: true })).toBe(true);
    expect((await r.listLinks()).map((l) => [l.first, l.second, l.learned])).toEqual([
      [hex('a'), hex('b'), false],
      [hex('d'), hex('e'), true],
    ]);
    expect(await r.importLinks([{ first: hex('1'), second: hex('2') }], { replace: true })).toEqual(
      { added: 1, updated: 0, removed: 2 },
    );
  });
});

describe('hybrid links compiled', () => {
  it('maps both hashes of a link to the first, anything else to itself', () => {
    const p = compilePolicy({ ...EMPTY_SNAPSHOT, links: [[hex('a'), hex('b')]] });
    const a = Buffer.from(hex('a'), 'hex');
    const b = Buffer.from(hex('b'), 'hex');
    const c = Buffer.from(hex('c'), 'hex');
    expect(p.swarmOf(b).equals(a)).toBe(true);
    expect(p.swarmOf(a).equals(a)).toBe(true);
    expect(p.swarmOf(c)).toBe(c);
    expect([p.linked(a), p.linked(b), p.linked(c)]).toEqual([true, true, false]);
    expect(p.sizes.links).toBe(1);
  });

  it('skips junk and a second link claiming a linked hash (a hand-edited KV)', () => {
    const p = compilePolicy({
      ...EMPTY_SNAPSHOT,
      links: [
        [hex('a'), hex('b')],
        [hex('c'), hex('b')],
        ['nothex', hex('d')],
      ],
    });
    expect(p.sizes.links).toBe(1);
    expect(p.swarmOf(Buffer.from(hex('c'), 'hex')).equals(Buffer.from(hex('c'), 'hex'))).toBe(true);
  });
});
