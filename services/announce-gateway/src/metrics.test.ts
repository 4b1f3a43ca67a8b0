import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram, REQUEST_BUCKETS } from './metrics.ts';

describe('FastHistogram', () => {
  it('renders exactly what a prom-client Histogram renders for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const fast = new FastHistogram('lat_seconds', 'latency', REQUEST_BUCKETS);
    ours.registerMetric(fast.asMetric());
    const reference = new Histogram({
      name: 'lat_seconds',
      help: 'latency',
      labelNames: ['protocol', 'action'] as const,
      buckets: [...REQUEST_BUCKETS],
      registers: [theirs],
    });
    const values = [0, 0.0001, 0.00011, 0.0007, 0.003, 0.02, 0.5, 1, 2.5, 40];
    const udp = fast.series({ protocol: 'udp', action: 'announce' });
    const http = fast.series({ protocol: 'http', action: 'scrape' });
    for (const v of values) {
      udp.observe(v);
      reference.labels('udp', 'announce').observe(v);
    }
    http.observe(0.004);
    reference.labels('http', 'scrape').observe(0.004);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
