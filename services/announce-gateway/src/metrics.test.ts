import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram, REQUEST_BUCKETS, createGatewayMetrics } from './metrics.ts';

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

describe('request counters', () => {
  it('count every inc(), whenever the registry collects', async () => {
    const registry = new Registry();
    const metrics = createGatewayMetrics(registry);
    const announces = metrics.request('udp', 'announce', 'ok');
    const line = /^shoal_requests_total\{protocol="udp",action="announce",outcome="ok"\} (\d+)$/m;
    expect(line.exec(await registry.metrics())?.[1]).toBe('0');
    for (let i = 0; i < 3; i++) announces.inc();
    metrics.udpDropped('malformed');
    const first = await registry.metrics();
    expect(line.exec(first)?.[1]).toBe('3');
    expect(first).toMatch(/^shoal_udp_dropped_packets_total\{reason="malformed"\} 1$/m);
    announces.inc();
    expect(line.exec(await registry.metrics())?.[1]).toBe('4');
  });
});
