import { describe, expect, it } from 'vitest';
import {
  libtorrentBackoff,
  newClientMemory,
  nextAnnounceDelay,
  type Answer,
  type Family,
  type Transport,
} from './clients.ts';
import { Rng } from './events.ts';

const rng = new Rng(1);
const delays = (
  family: Family,
  transport: Transport,
  answers: Answer[],
  honours = false,
): number[] => {
  const memory = newClientMemory();
  return answers.map((a) =>
    nextAnnounceDelay(family, transport, a, memory, rng, {
      transmissionHonoursFailureInterval: honours,
    }),
  );
};
const ok = (interval: number, minInterval = interval / 2): Answer => ({
  kind: 'ok',
  interval,
  minInterval,
});
const bare: Answer = { kind: 'failure' };
const withInterval = (s: number): Answer => ({ kind: 'failure', interval: s, minInterval: s });

describe('client reactions', () => {
  it("libtorrent: a failure without interval means 1800 s, one with interval is taken as given (2.0.8, measured), a success's is floored at 300 s", () => {
    expect(delays('libtorrent', 'http', [bare, bare])).toEqual([1800, 1800]);
    expect(delays('libtorrent', 'http', [withInterval(120)])).toEqual([120]);
    expect(delays('libtorrent', 'http', [withInterval(10), withInterval(10)])).toEqual([17, 55]);
    expect(delays('libtorrent', 'http', [withInterval(900)])).toEqual([900]);
    expect(delays('libtorrent', 'http', [ok(120)])).toEqual([300]);
  });

  it('libtorrent: UDP errors: first retry after 29 s (measured), then the 5 + 12.5 n^2 s backoff up to an hour; a success resets the count', () => {
    expect([1, 2, 3, 4, 100].map(libtorrentBackoff)).toEqual([17, 55, 117, 205, 3600]);
    expect(delays('libtorrent', 'udp', [withInterval(900), bare, bare, ok(1800), bare])).toEqual([
      29, 55, 117, 1800, 29,
    ]);
  });

  it('Transmission: 20 s, then 5, 15 min (plus up to a minute), whatever the failure says unless 4.1+', () => {
    const [first, second, third] = delays('transmission', 'http', [withInterval(900), bare, bare]);
    expect(first).toBe(20);
    expect(second).toBeGreaterThanOrEqual(300);
    expect(second).toBeLessThan(360);
    expect(third).toBeGreaterThanOrEqual(900);
    expect(third).toBeLessThan(960);
    expect(delays('transmission', 'http', [withInterval(900)], true)).toEqual([900]);
    expect(delays('transmission', 'udp', [withInterval(900)], true)).toEqual([20]);
  });

  it('aria2: announces every min interval and retries a failure one min interval of its last success later', () => {
    expect(delays('aria2', 'http', [bare])).toEqual([120]);
    expect(delays('aria2', 'http', [ok(1800, 900), withInterval(60), bare])).toEqual([
      900, 900, 900,
    ]);
  });
});
