import { createMemoryStore } from '@shoal/storage/memory';
import { describe, expect, it } from 'vitest';
import { banAddress, banKeyOf, checkBanAddress } from './bans.ts';
import { compilePolicy, EMPTY_SNAPSHOT } from './compile.ts';
import { createPolicyRepository } from './repository.ts';

describe('ban keys', () => {
  it('keys IPv4 per address (mapped IPv6 too) and IPv6 per /64', () => {
    expect(checkBanAddress('203.0.113.5')).toBe('4-cb007105');
    expect(checkBanAddress('::ffff:203.0.113.5')).toBe('4-cb007105');
    expect(checkBanAddress('2001:db8:1:2::99')).toBe(checkBanAddress('2001:db8:1:2:ffff::1'));
    expect(checkBanAddress('2001:db8:1:2::/64')).toBe('6-20010db800010002');
    expect(banAddress('6-20010db800010002')).toBe('2001:db8:1:2::/64');
    expect(banAddress('4-cb007105')).toBe('203.0.113.5');
    expect(banKeyOf(4, Buffer.from([203, 0, 113, 5]))).toBe('4-cb007105');
    expect(() => checkBanAddress('not-an-ip')).toThrow(
      expect.objectContaining({ code: 'POLICY_ERR_BAD_ADDRESS' }),
    );
  });
});

describe('bans in the repository and the snapshot', () => {
  it('keeps the longer ban, lists and snapshots only those in force, removes', async () => {
    let now = 1_000_000;
    const repo = createPolicyRepository(createMemoryStore({ peerLifetimeSeconds: 60 }), () => now);
    const key = checkBanAddress('198.51.100.7');
    expect(await repo.addBan({ key, until: now + 60_000, reason: 'malformed' })).toBe(true);
    expect(await repo.addBan({ key, until: now + 1_000, reason: 'manual' })).toBe(false);
    expect((await repo.listBans(now)).map((b) => [b.address, b.until, b.reason])).toEqual([
      ['198.51.100.7', now + 60_000, 'malformed'],
    ]);
    const p = compilePolicy(await repo.snapshot());
    expect(p.hasBans).toBe(true);
    expect(p.bannedUntil(key, now)).toBe(now + 60_000);
    expect(p.bannedUntil(key, now + 60_000)).toBeUndefined();
    now += 61_000;
    expect(await repo.listBans(now)).toEqual([]);
    expect((await repo.snapshot()).bans).toEqual([]);
    expect(await repo.removeBan(key)).toBe(true);
    expect(await repo.removeBan(key)).toBe(false);
    expect(compilePolicy(EMPTY_SNAPSHOT).hasBans).toBe(false);
  });
});
