import { describe, expect, it } from 'vitest';
import { prng } from '@shoal/testing/random';
import { INDEX_FROM, KEY_HASH_LEN, PeerTable, RecordArena } from './peer-table.ts';

/** A compact key whose bytes differ only at the end, like neighbours in one subnet. */
function keyOf(n: number, keyLen: number): Uint8Array {
  const k = new Uint8Array(keyLen);
  k[keyLen - 6] = 10;
  k[keyLen - 4] = (n >>> 8) & 0xff;
  k[keyLen - 3] = n & 0xff;
  k[keyLen - 2] = 0x1a;
  k[keyLen - 1] = 0xe1;
  return k;
}

/** A key hash unique to (n, version); never all zero. */
function keyHashOf(n: number, version: number): Uint8Array {
  const h = new Uint8Array(KEY_HASH_LEN);
  h[0] = 1;
  h[1] = (n >>> 8) & 0xff;
  h[2] = n & 0xff;
  h[3] = version & 0xff;
  return h;
}

function everyone(t: PeerTable): string[] {
  const out = Buffer.alloc(t.size * t.arena.keyLen);
  const got = t.sample(out, t.size, false, -1, undefined);
  expect(got).toBe(t.size);
  const keys: string[] = [];
  for (let o = 0; o < out.length; o += t.arena.keyLen)
    keys.push(out.subarray(o, o + t.arena.keyLen).toString('hex'));
  return keys.sort();
}

describe('PeerTable in a shared RecordArena', () => {
  for (const keyLen of [6, 18]) {
    it(`many tables growing, shrinking and released keep their own peers, found by address and by key hash (key ${keyLen} bytes)`, () => {
      const arena = new RecordArena(keyLen);
      const rand = prng(keyLen);
      const peerId = new Uint8Array(20);
      const tables: Array<{ t: PeerTable; members: Set<number> }> = [];
      for (let i = 0; i < 60; i++) tables.push({ t: new PeerTable(arena), members: new Set() });
      /** The key hash each (table, peer) was last written with; absent: none. */
      const hashes = new Map<string, Uint8Array>();
      let version = 0;
      const nextHash = (n: number): Uint8Array | undefined =>
        rand() < 0.3 ? undefined : keyHashOf(n, ++version);
      for (let op = 0; op < 20_000; op++) {
        const slot = tables[Math.floor(rand() * tables.length)]!;
        // Table 0 gets big (index on), the others stay small; removal wins a third of the time.
        const n = Math.floor(rand() * (slot === tables[0] ? INDEX_FROM * 6 : 12));
        const key = keyOf(n, keyLen);
        const at = slot.t.find(key);
        expect(at >= 0).toBe(slot.members.has(n));
        const id = `${tables.indexOf(slot)}:${n}`;
        if (rand() < 0.35) {
          if (at >= 0) slot.t.removeAt(at);
          slot.members.delete(n);
          hashes.delete(id);
        } else {
          const h = nextHash(n);
          if (at < 0) slot.t.insert(key, peerId, 1000, 0, h);
          else slot.t.update(at, peerId, 1000, 0, h);
          slot.members.add(n);
          if (h === undefined) hashes.delete(id);
          else hashes.set(id, h);
        }
        if (slot.members.size === 0 && rand() < 0.5) {
          // The store releases an emptied table and later starts a new one.
          slot.t.release();
          slot.t = new PeerTable(arena);
        }
        if (op % 1000 === 0) {
          for (const [ti, { t, members }] of tables.entries()) {
            expect(t.size).toBe(members.size);
            for (const m of members) {
              const h = hashes.get(`${ti}:${m}`);
              if (h !== undefined) expect(t.findKeyHash(h)).toBe(t.find(keyOf(m, keyLen)));
            }
            expect(t.findKeyHash(new Uint8Array(KEY_HASH_LEN).fill(2))).toBe(-1);
            expect(everyone(t)).toEqual(
              [...members].map((m) => Buffer.from(keyOf(m, keyLen)).toString('hex')).sort(),
            );
          }
        }
      }
    });
  }

  it('sweep removes exactly the expired records and keeps the rest findable through the index', () => {
    const t = new PeerTable(new RecordArena(6));
    const peerId = new Uint8Array(20);
    for (let n = 0; n < 400; n++)
      t.insert(keyOf(n, 6), peerId, n % 2 === 0 ? 100 : 200, n % 4 === 0 ? 1 : 0, undefined);
    expect(t.seeders).toBe(100);
    expect(t.sweep(99)).toBe(0);
    expect(t.sweep(100)).toBe(200);
    expect(t.size).toBe(200);
    expect(t.seeders).toBe(0);
    for (let n = 0; n < 400; n++) expect(t.find(keyOf(n, 6)) >= 0).toBe(n % 2 === 1);
    expect(t.sweep(150)).toBe(0);
    expect(t.sweep(200)).toBe(200);
    expect(t.size).toBe(0);
  });

  it('sampling a seeder never returns seeders nor the announcer', () => {
    const t = new PeerTable(new RecordArena(6));
    const peerId = new Uint8Array(20);
    for (let n = 0; n < 100; n++)
      t.insert(keyOf(n, 6), peerId, 1000, n % 2 === 0 ? 1 : 0, undefined);
    const self = t.find(keyOf(0, 6));
    for (let i = 0; i < 50; i++) {
      const out = Buffer.alloc(100 * 6);
      const got = t.sample(out, 100, true, self, undefined);
      expect(got).toBe(50);
      for (let o = 0; o < got * 6; o += 6) expect(out[o + 3]! % 2).toBe(1);
    }
  });
});
