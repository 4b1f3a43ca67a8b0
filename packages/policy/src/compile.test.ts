import { describe, expect, it } from 'vitest';
import { compilePolicy, EMPTY_SNAPSHOT, HashSet } from './compile.ts';
import { PolicyError } from './errors.ts';
import type { PolicyErrorCode } from './errors.ts';
import type { PolicySnapshot } from './types.ts';

const H_ALLOWED = 'aa'.repeat(20);
const H_DENIED = 'Bb'.repeat(20);
const H_OTHER = '0123456789abcdef0123456789abcdef01234567';
const T = 1_700_000_000_000;

const snapshot: PolicySnapshot = {
  revision: 'r1',
  torrents: { allow: [H_ALLOWED], deny: [H_DENIED] },
  clients: { allow: ['-TR', '-qB4', 'M7-2-2--'], deny: ['S', '-XX0001', 'S58B~'] },
  passkeys: [
    ['forever-key', null],
    ['until-t-key', T],
  ],
};
const policy = compilePolicy(snapshot);

const hash = (hex: string): Buffer => Buffer.from(hex, 'hex');
const peerId = (prefix: string): Buffer =>
  Buffer.concat([Buffer.from(prefix, 'latin1'), Buffer.alloc(20 - prefix.length, 0x30)]);

function codeOf(fn: () => void): PolicyErrorCode | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).code;
  }
}

describe('compilePolicy', () => {
  it('keeps the revision and counts entries', () => {
    expect(policy.revision).toBe('r1');
    expect(policy.sizes).toEqual({ torrents: 2, clients: 6, passkeys: 2, links: 0 });
  });

  it('checkTorrent: off passes all, allow passes only listed, deny refuses only listed', () => {
    for (const h of [H_ALLOWED, H_DENIED, H_OTHER]) {
      expect(codeOf(() => policy.checkTorrent(hash(h), 'off'))).toBeUndefined();
    }
    expect(codeOf(() => policy.checkTorrent(hash(H_ALLOWED), 'allow'))).toBeUndefined();
    expect(codeOf(() => policy.checkTorrent(hash(H_OTHER), 'allow'))).toBe(
      'POLICY_ERR_TORRENT_NOT_ALLOWED',
    );
    // The deny list is not consulted in allow mode, and vice versa.
    expect(codeOf(() => policy.checkTorrent(hash(H_DENIED), 'allow'))).toBe(
      'POLICY_ERR_TORRENT_NOT_ALLOWED',
    );
    expect(codeOf(() => policy.checkTorrent(hash(H_DENIED), 'deny'))).toBe(
      'POLICY_ERR_TORRENT_DENIED',
    );
    expect(codeOf(() => policy.checkTorrent(hash(H_ALLOWED), 'deny'))).toBeUndefined();
    expect(codeOf(() => policy.checkTorrent(hash(H_OTHER), 'deny'))).toBeUndefined();
  });

  it('checkTorrent matches bytes >= 0x80 (latin1 keys) and a hash inside a larger buffer', () => {
    const p = compilePolicy({
      ...EMPTY_SNAPSHOT,
      torrents: { allow: [], deny: ['ff80'.repeat(10)] },
    });
    const packet = Buffer.concat([Buffer.from('ff80'.repeat(10), 'hex'), Buffer.from('tail')]);
    expect(codeOf(() => p.checkTorrent(packet.subarray(0, 20), 'deny'))).toBe(
      'POLICY_ERR_TORRENT_DENIED',
    );
    expect(codeOf(() => p.checkTorrent(hash('ff81'.repeat(10)), 'deny'))).toBeUndefined();
  });

  it('checkClient matches listed prefixes of several lengths', () => {
    for (const p of ['-TR', '-qB4', 'M7-2-2--']) {
      expect(
        codeOf(() => policy.checkClient(peerId(`${p}123`), 'allow')),
        p,
      ).toBeUndefined();
    }
    // '-qB' is shorter than the listed '-qB4'; '-T' is not '-TR'.
    for (const p of ['-qB3', '-T', 'M7-2-2-', '-UT']) {
      expect(
        codeOf(() => policy.checkClient(peerId(p), 'allow')),
        p,
      ).toBe('POLICY_ERR_CLIENT_NOT_ALLOWED');
    }
    for (const p of ['S', 'SD1', '-XX0001', 'S58B~']) {
      expect(
        codeOf(() => policy.checkClient(peerId(p), 'deny')),
        p,
      ).toBe('POLICY_ERR_CLIENT_DENIED');
    }
    for (const p of ['-XX0002', '-TR', 's']) {
      expect(
        codeOf(() => policy.checkClient(peerId(p), 'deny')),
        p,
      ).toBeUndefined();
    }
    expect(codeOf(() => policy.checkClient(peerId('-UT'), 'off'))).toBeUndefined();
  });

  it('checkClient: a peer_id shorter than a prefix does not match it', () => {
    const p = compilePolicy({ ...EMPTY_SNAPSHOT, clients: { allow: [], deny: ['-XX0001'] } });
    expect(codeOf(() => p.checkClient(Buffer.from('-XX'), 'deny'))).toBeUndefined();
  });

  it('checkPasskey: missing, unknown, valid until expiresAt, expired at expiresAt', () => {
    expect(codeOf(() => policy.checkPasskey(undefined, T))).toBe('POLICY_ERR_PASSKEY_MISSING');
    expect(codeOf(() => policy.checkPasskey('who-is-this', T))).toBe('POLICY_ERR_PASSKEY_UNKNOWN');
    expect(codeOf(() => policy.checkPasskey('until-t-key', T - 1))).toBeUndefined();
    expect(codeOf(() => policy.checkPasskey('until-t-key', T))).toBe('POLICY_ERR_PASSKEY_EXPIRED');
    expect(codeOf(() => policy.checkPasskey('until-t-key', T + 1))).toBe(
      'POLICY_ERR_PASSKEY_EXPIRED',
    );
    expect(
      codeOf(() => policy.checkPasskey('forever-key', Number.MAX_SAFE_INTEGER)),
    ).toBeUndefined();
  });

  it('skips malformed entries of a snapshot and enforces the rest', () => {
    const p = compilePolicy({
      revision: 'x',
      torrents: { allow: [], deny: ['nothex', H_DENIED, 42 as unknown as string] },
      clients: { allow: [], deny: ['has space', '-XX'] },
      passkeys: [
        ['good-key-01', null],
        [7 as unknown as string, null],
      ],
    });
    expect(p.sizes).toEqual({ torrents: 1, clients: 1, passkeys: 1, links: 0 });
    expect(codeOf(() => p.checkTorrent(hash(H_DENIED), 'deny'))).toBe('POLICY_ERR_TORRENT_DENIED');
    expect(codeOf(() => p.checkClient(peerId('-XX'), 'deny'))).toBe('POLICY_ERR_CLIENT_DENIED');
  });

  it('EMPTY_SNAPSHOT refuses everything in allow mode and nothing in deny mode', () => {
    const p = compilePolicy(EMPTY_SNAPSHOT);
    expect(p.revision).toBe('');
    expect(p.sizes).toEqual({ torrents: 0, clients: 0, passkeys: 0, links: 0 });
    expect(codeOf(() => p.checkTorrent(hash(H_ALLOWED), 'allow'))).toBe(
      'POLICY_ERR_TORRENT_NOT_ALLOWED',
    );
    expect(codeOf(() => p.checkTorrent(hash(H_ALLOWED), 'deny'))).toBeUndefined();
    expect(codeOf(() => p.checkClient(peerId('-TR'), 'allow'))).toBe(
      'POLICY_ERR_CLIENT_NOT_ALLOWED',
    );
    expect(codeOf(() => p.checkPasskey('any-key-01', 0))).toBe('POLICY_ERR_PASSKEY_UNKNOWN');
  });

  it('refusals carry the client text and status of the catalog', () => {
    try {
      policy.checkTorrent(hash(H_DENIED), 'deny');
      expect.unreachable();
    } catch (err) {
      const e = err as PolicyError;
      expect(e.failureReason).toBe('torrent is banned on this tracker');
      expect(e.httpStatus).toBe(403);
      expect(e.ours).toBe(false);
    }
  });
});

describe('HashSet', () => {
  it('tells apart hashes that share their first 6 bytes (the number key), and misses near neighbours', () => {
    const base = Buffer.from('00112233445566778899aabbccddeeff00112233', 'hex');
    const sibling = Buffer.from(base);
    sibling[19] = 0x34; // same first 6 bytes, last byte differs
    const cousin = Buffer.from(base);
    cousin[7] = 0x00; // differs inside the 'a' word
    const set = new HashSet();
    set.add(base);
    set.add(sibling);
    set.add(Buffer.from(base)); // a duplicate does not count twice
    expect(set.size).toBe(2);
    expect(set.has(base)).toBe(true);
    expect(set.has(sibling)).toBe(true);
    expect(set.has(cousin)).toBe(false);
    const third = Buffer.from(base);
    third[12] = 0x77; // differs inside the 'b' word (base has 0xcc there)
    expect(set.has(third)).toBe(false);
    // A subarray of a larger packet works like a copy (UDP hands the gateway slices).
    const packet = Buffer.concat([Buffer.alloc(16), sibling, Buffer.alloc(62)]);
    expect(set.has(packet.subarray(16, 36))).toBe(true);
  });
});
