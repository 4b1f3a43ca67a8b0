// The load loop's decisions per announce: the promised lifetime and
// shedding by class (docs/load.md), on the gateway's own config.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { PeerAnnounce } from '@shoal/storage';
import { loadGatewayConfig } from '../config.ts';
import { createLoadControl } from './control.ts';

function control(env: Record<string, string> = {}) {
  const registry = new Registry();
  const load = createLoadControl({
    config: loadGatewayConfig({ env, argv: [] }),
    registry,
    logger: pino({ level: 'silent' }),
    sources: {},
    random: () => 0.5,
  });
  return { load, registry };
}

function announce(event: PeerAnnounce['event'], seeder: boolean): PeerAnnounce {
  return {
    infoHash: Buffer.alloc(20, 1),
    peerId: Buffer.alloc(20, 2),
    family: 4,
    address: Buffer.from([127, 0, 0, 1]),
    port: 6881,
    seeder,
    event,
    numWant: 50,
    withPeerIds: false,
  };
}

describe('the load loop', () => {
  it('promises each peer its interval plus the grace of PEER_LIFETIME_SECONDS, never less than that', () => {
    const { load } = control();
    expect(load.lifetimeFor(1800)).toBe(1860);
    expect(load.lifetimeFor(7200)).toBe(7260);
    expect(load.lifetimeFor(300)).toBe(1860);
  });

  it('sheds seeder updates first, leecher updates next, events last, and counts each kind', async () => {
    const { load, registry } = control({
      SHED_SEEDER_UPDATES_AT: '10',
      SHED_LEECHER_UPDATES_AT: '20',
      SHED_EVENTS_AT: '30',
    });
    const seeder = announce('none', true);
    const leecher = announce('none', false);
    const started = announce('started', false);
    expect([seeder, leecher, started].map((a) => load.shed(a, 9))).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(load.shed(seeder, 10)).toBeGreaterThanOrEqual(300);
    expect(load.shed(leecher, 19)).toBeUndefined();
    expect(load.shed(leecher, 20)).toBeDefined();
    expect(load.shed(started, 29)).toBeUndefined();
    expect(load.shed(announce('stopped', true), 30)).toBeDefined();
    const text = await registry.metrics();
    expect(text).toContain('shoal_gateway_shed_announces_total{kind="seeder_update"} 1');
    expect(text).toContain('shoal_gateway_shed_announces_total{kind="leecher_update"} 1');
    expect(text).toContain('shoal_gateway_shed_announces_total{kind="event"} 1');
  });

  it('answers a shed announce with an interval spread between SHED_INTERVAL_MIN_SECONDS and the current one', () => {
    const { load } = control({ SHED_SEEDER_UPDATES_AT: '1' });
    // random() = 0.5 over 300..1800.
    expect(load.shed(announce('none', true), 1)).toBe(300 + Math.floor(0.5 * 1501));
  });

  it('refuses thresholds out of the documented order', () => {
    expect(() =>
      loadGatewayConfig({ env: { SHED_SEEDER_UPDATES_AT: '50', SHED_LEECHER_UPDATES_AT: '40' } }),
    ).toThrow(/SHED_LEECHER_UPDATES_AT/);
    expect(() => loadGatewayConfig({ env: { LOAD_LOW: '2' } })).toThrow(/LOAD_LOW/);
  });
});
