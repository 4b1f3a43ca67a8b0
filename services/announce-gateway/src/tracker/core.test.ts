import { describe, expect, it } from 'vitest';
import type { AnnounceRequest } from '@shoal/protocol';
import { PolicyError } from '@shoal/policy';
import type { AnnounceResult, PeerAnnounce, SwarmCounts } from '@shoal/storage';
import type { PeerAddress } from '../client-address.ts';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadGatewayConfig } from '../config.ts';
import { createGatewayMetrics } from '../metrics.ts';
import { createAbuseControl } from '../policy/abuse.ts';
import type { GatewayStorage } from '../storage.ts';
import { Tracker } from './core.ts';
import { buildSteps } from './steps.ts';
import { STEP_ORDER, type AnnounceContext, type ScrapeContext, type Step } from './types.ts';

const PEER: PeerAddress = { family: 4, bytes: Buffer.from([10, 0, 0, 1]) };
const HASH = Buffer.alloc(20, 1);
const RESULT: AnnounceResult = {
  seeders: 1,
  leechers: 0,
  downloaded: 0,
  peers: Buffer.alloc(0),
  peerIds: undefined,
};

/** Records every call the core makes, in order. */
function recorder(): { calls: string[]; storage: (sync: boolean) => GatewayStorage } {
  const calls: string[] = [];
  return {
    calls,
    storage: (sync) =>
      ({
        announce: (a: PeerAnnounce) => {
          calls.push(`store.announce ${a.port}`);
          return Promise.resolve(RESULT);
        },
        ...(sync
          ? {
              announceSync: (a: PeerAnnounce) => {
                calls.push(`store.announceSync ${a.port}`);
                return RESULT;
              },
            }
          : {}),
        scrape: (hashes: readonly Buffer[]) => {
          calls.push(`store.scrape ${hashes.length}`);
          return Promise.resolve(
            hashes.map((): SwarmCounts => ({ seeders: 2, leechers: 3, downloaded: 4 })),
          );
        },
      }) as unknown as GatewayStorage,
  };
}

function announceContext(calls: string[]): AnnounceContext {
  const request: AnnounceRequest = {
    infoHash: HASH,
    peerId: Buffer.from('-TR3000-abcdefghijkl'),
    port: 6881,
    uploaded: 0n,
    downloaded: 0n,
    left: 0n,
    event: 'none',
    numWant: undefined,
    compact: true,
    noPeerId: false,
    key: undefined,
    ip: undefined,
  };
  return {
    now: 1000,
    interval: 0,
    source: () => (calls.push('ctx.source'), PEER),
    request: () => (calls.push('ctx.request'), request),
    peer: () => (calls.push('ctx.peer'), PEER),
    passkey: () => (calls.push('ctx.passkey'), 'key'),
    jwt: () => (calls.push('ctx.jwt'), 'token'),
  };
}

function scrapeContext(calls: string[]): ScrapeContext {
  return {
    now: 1000,
    source: () => (calls.push('ctx.source'), PEER),
    passkey: () => (calls.push('ctx.passkey'), undefined),
    infoHashes: () => (calls.push('ctx.infoHashes'), [HASH, Buffer.alloc(20, 2)]),
  };
}

/** Steps that log their calls; `refuse` names the step that throws. */
function spySteps(calls: string[], refuse?: string): Step[] {
  const run = (name: string): void => {
    calls.push(name);
    if (name === refuse) throw new PolicyError('POLICY_ERR_TORRENT_DENIED');
  };
  return [
    { name: 'jitter', interval: (s) => (calls.push('jitter'), s + 7) },
    { name: 'torrent-approval', announce: () => run('torrent'), scrape: () => run('torrent') },
    { name: 'passkey', announce: (ctx) => (ctx.passkey(), run('passkey')) },
    { name: 'rate-limit', admit: (ctx) => (ctx.source(), run('rate-limit')) },
    { name: 'client-approval', announce: () => run('client') },
  ];
}

const POLICY = { numWantDefault: 50, numWantMax: 200 };

function tracker(storage: GatewayStorage, steps: Step[]): Tracker {
  return new Tracker({ storage, steps, policy: POLICY, intervalSeconds: 1800 });
}

describe('tracker core', () => {
  it('runs the steps in its own order, whatever order they are given in', () => {
    const { calls, storage } = recorder();
    const t = tracker(storage(true), spySteps(calls));
    expect(t.steps).toEqual([
      'rate-limit',
      'passkey',
      'client-approval',
      'torrent-approval',
      'jitter',
    ]);
    const ctx = announceContext(calls);
    expect(t.announce(ctx)).toBe(RESULT);
    expect(ctx.interval).toBe(1807);
    expect(calls).toEqual([
      'ctx.source',
      'rate-limit',
      'ctx.request',
      'ctx.passkey',
      'passkey',
      'client',
      'torrent',
      'ctx.peer',
      'jitter',
      'store.announceSync 6881',
    ]);
  });

  it('builds the configured steps in the documented order', () => {
    const config = loadGatewayConfig({
      env: {
        ANNOUNCE_INTERVAL_JITTER_SECONDS: '60',
        TORRENT_APPROVAL: 'deny',
        CLIENT_APPROVAL: 'allow',
        JWT_REQUIRED: 'true',
        JWT_ISSUER: 'https://issuer.example',
        JWT_JWKS: '{"keys":[]}',
        PASSKEY_REQUIRED: 'true',
        RATE_LIMIT_ANNOUNCES_PER_SECOND: '5',
        HYBRID_LINKS: 'true',
        ABUSE_BAN_STRIKES: '5',
      },
    });
    const cache = { current: undefined } as Parameters<typeof buildSteps>[1];
    const abuse = createAbuseControl({
      strikes: 5,
      windowSeconds: 10,
      banSeconds: 60,
      maxAddresses: 10,
      ban: undefined,
      current: () => undefined,
      metrics: createGatewayMetrics(new Registry(), Date.now),
      logger: pino({ level: 'silent' }),
    });
    const t = tracker(
      recorder().storage(true),
      buildSteps(config, cache, undefined, undefined, abuse),
    );
    expect(t.steps).toEqual(STEP_ORDER);
    const fixed = { ANNOUNCE_INTERVAL_MAX_SECONDS: '1800' };
    expect(
      tracker(recorder().storage(true), buildSteps(loadGatewayConfig({ env: fixed }), undefined))
        .steps,
    ).toEqual([]);
    // docs/load.md: an interval that may rise is spread by the jitter step even with no jitter set.
    expect(
      tracker(recorder().storage(true), buildSteps(loadGatewayConfig({ env: {} }), undefined))
        .steps,
    ).toEqual(['jitter']);
  });

  it('stops at the first refusal: no later step, no decoding after an admission refusal, no store', () => {
    for (const [refuse, seen] of [
      ['rate-limit', ['ctx.source', 'rate-limit']],
      ['passkey', ['ctx.source', 'rate-limit', 'ctx.request', 'ctx.passkey', 'passkey']],
      ['client', ['ctx.source', 'rate-limit', 'ctx.request', 'ctx.passkey', 'passkey', 'client']],
    ] as const) {
      const { calls, storage } = recorder();
      const t = tracker(storage(true), spySteps(calls, refuse));
      const ctx = announceContext(calls);
      expect(() => t.announce(ctx), refuse).toThrow(PolicyError);
      expect(calls, refuse).toEqual(seen);
      expect(ctx.interval).toBe(0);
    }
  });

  it('answers synchronously only when every step and the store are synchronous', async () => {
    const sync = recorder();
    const fast = tracker(sync.storage(true), spySteps(sync.calls));
    expect(fast.synchronous).toBe(true);
    expect(fast.announce(announceContext(sync.calls))).not.toBeInstanceOf(Promise);

    const asyncStore = recorder();
    const slowStore = tracker(asyncStore.storage(false), spySteps(asyncStore.calls));
    expect(slowStore.synchronous).toBe(false);
    const pending = slowStore.announce(announceContext(asyncStore.calls));
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBe(RESULT);
    expect(asyncStore.calls).toContain('store.announce 6881');

    // A step that waits (the JWT) makes the path asynchronous, in its place in the order,
    // and the store's synchronous announce is still used once the steps are through.
    const waiting = recorder();
    const jwt: Step = {
      name: 'jwt',
      announceAsync: async (ctx) => {
        ctx.jwt();
        await Promise.resolve();
        waiting.calls.push('jwt');
      },
    };
    const slowStep = tracker(waiting.storage(true), [...spySteps(waiting.calls), jwt]);
    expect(slowStep.synchronous).toBe(false);
    const ctx = announceContext(waiting.calls);
    const answer = slowStep.announce(ctx);
    expect(answer).toBeInstanceOf(Promise);
    expect(await answer).toBe(RESULT);
    expect(waiting.calls).toEqual([
      'ctx.source',
      'rate-limit',
      'ctx.request',
      'ctx.passkey',
      'passkey',
      'ctx.jwt',
      'jwt',
      'client',
      'torrent',
      'ctx.peer',
      'jitter',
      'store.announceSync 6881',
    ]);
    expect(ctx.interval).toBe(1807);
  });

  it('refuses a waiting announce by rejecting, before the store', async () => {
    const { calls, storage } = recorder();
    const denied: Step = {
      name: 'jwt',
      announceAsync: () => Promise.reject(new PolicyError('POLICY_ERR_JWT_INVALID')),
    };
    const t = tracker(storage(true), [...spySteps(calls), denied]);
    await expect(t.announce(announceContext(calls))).rejects.toThrow(PolicyError);
    expect(calls).not.toContain('client');
    expect(calls.some((c) => c.startsWith('store.'))).toBe(false);
  });

  it('scrapes after its checks, decoding the hashes last, and zeroes the hidden ones', async () => {
    const { calls, storage } = recorder();
    const hides: Step = {
      name: 'torrent-approval',
      scrape: () => calls.push('torrent'),
      hides: (h) => h.equals(HASH),
    };
    const t = tracker(storage(true), [
      hides,
      ...spySteps(calls).filter((s) => s.name === 'rate-limit'),
    ]);
    expect(await t.scrape(scrapeContext(calls))).toEqual([
      { infoHash: HASH, complete: 0, incomplete: 0, downloaded: 0, downloaders: 0 },
      { infoHash: Buffer.alloc(20, 2), complete: 2, incomplete: 3, downloaded: 4 },
    ]);
    expect(calls).toEqual([
      'ctx.source',
      'rate-limit',
      'torrent',
      'ctx.infoHashes',
      'store.scrape 2',
    ]);
  });

  it('refuses a scrape before decoding its hashes', async () => {
    const { calls, storage } = recorder();
    const t = tracker(storage(true), spySteps(calls, 'torrent'));
    await expect(t.scrape(scrapeContext(calls))).rejects.toThrow(PolicyError);
    expect(calls).toEqual(['ctx.source', 'rate-limit', 'torrent']);
  });

  it('refuses a step named twice', () => {
    const steps: Step[] = [{ name: 'jitter' }, { name: 'jitter' }];
    expect(() => tracker(recorder().storage(true), steps)).toThrow(/twice/);
  });
});

describe('the tracker core with a BEP 7 address of the other family', () => {
  const V6 = { family: 6 as const, bytes: Buffer.alloc(16, 0x20), port: 7000 };

  /** A store whose answers tell the two writes apart: the IPv6 one has peers `v6` and counts `counts6`. */
  function twoFamilyStore(sync: boolean, counts4: number, counts6: number) {
    const writes: PeerAnnounce[] = [];
    const answer = (a: PeerAnnounce): AnnounceResult => {
      writes.push(a);
      const n = a.family === 6 ? counts6 : counts4;
      return {
        ...RESULT,
        seeders: n,
        leechers: n,
        peers: Buffer.from(a.family === 6 ? 'v6' : 'v4'),
      };
    };
    const storage = {
      announce: (a: PeerAnnounce) => Promise.resolve(answer(a)),
      ...(sync ? { announceSync: answer } : {}),
    } as unknown as GatewayStorage;
    return { writes, storage };
  }

  function contextWith(
    event: AnnounceRequest['event'],
    alsoAt: NonNullable<AnnounceContext['alsoAt']>,
  ): AnnounceContext {
    const ctx = announceContext([]);
    const request = { ...ctx.request(), event };
    return { ...ctx, request: () => request, alsoAt };
  }

  for (const sync of [true, false])
    it(`writes both entries, completed to its own family only, and answers both families (${sync ? 'sync' : 'async'} store)`, async () => {
      const { writes, storage } = twoFamilyStore(sync, 3, 4);
      const tracker = new Tracker({ storage, steps: [], policy: POLICY, intervalSeconds: 1800 });
      const answer = await tracker.announce(contextWith('completed', () => V6));
      expect(writes.map((w) => [w.family, w.port, w.event])).toEqual([
        [4, 6881, 'completed'],
        [6, 7000, 'none'],
      ]);
      expect(writes[1]!.address).toEqual(V6.bytes);
      expect(writes[1]!.seeder).toBe(true);
      expect(answer.peers.toString()).toBe('v4');
      expect(answer.other?.peers.toString()).toBe('v6');
      // The answer that saw both writes: the larger counts for an announce.
      expect(answer).toMatchObject({ seeders: 4, leechers: 4 });
    });

  it('answers stopped with the smaller counts, the ones after both removals', async () => {
    const { writes, storage } = twoFamilyStore(false, 5, 2);
    const tracker = new Tracker({ storage, steps: [], policy: POLICY, intervalSeconds: 1800 });
    const answer = await tracker.announce(contextWith('stopped', () => V6));
    expect(writes.map((w) => w.event)).toEqual(['stopped', 'stopped']);
    expect(answer).toMatchObject({ seeders: 2, leechers: 2 });
  });

  it('writes nothing when the address is refused', async () => {
    const { writes, storage } = twoFamilyStore(false, 1, 1);
    const tracker = new Tracker({ storage, steps: [], policy: POLICY, intervalSeconds: 1800 });
    const refused = new Error('refused');
    await expect(
      tracker.announce(
        contextWith('none', () => {
          throw refused;
        }),
      ),
    ).rejects.toBe(refused);
    expect(writes).toEqual([]);
  });
});
