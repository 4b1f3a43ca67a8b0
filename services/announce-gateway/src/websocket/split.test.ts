// WebSocket peers of the split topology through real processes
// (docs/webtorrent.md "The split topology"): browsers on two gateways of one
// storage-api, and on two gateways of two storage-api replicas sharing one
// redis-server, meet through the swarms in storage-api and the gateways'
// relay streams; a gateway killed without leaving loses its peers at the
// first offer routed to it; a storage-api restart costs announces a coded
// "retry later" until the streams are open again, and nothing more.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  startGateway,
  startService,
  storageApiEnv,
  type GatewayProcess,
  type ServiceProcess,
} from '@shoal/testing/launcher';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { hashOf, peerIdFor } from '../../test/support.ts';
import {
  WsClient,
  announceFrame,
  bin,
  isAnnounceAnswer,
  isFailure,
  isOffer,
  offerAndAnswer,
  offers,
  type Frame,
} from '../../test/ws-client.ts';

const stops: Array<() => Promise<unknown>> = [];
const clients: WsClient[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}, 120_000);

async function storageApi(token: string, env: Record<string, string>): Promise<ServiceProcess> {
  const api = await startService({
    service: 'storage-api',
    env: storageApiEnv(token, env.PEER_STORE_DRIVER ?? 'memory', env),
  });
  stops.push(() => api.stop());
  return api;
}

async function gatewayOf(api: ServiceProcess, token: string): Promise<GatewayProcess> {
  const g = await startGateway({
    STORAGE_DRIVER: 'remote',
    STORAGE_API_URL: `http://127.0.0.1:${Number(api.listening.port)}`,
    STORAGE_API_TOKEN: token,
    // The reconnect test waits for the stream; a short ceiling keeps that wait short.
    WS_RELAY_RECONNECT_MAX_MS: '500',
  });
  stops.push(() => g.stop());
  return g;
}

const wsUrl = (g: GatewayProcess): string => `ws://127.0.0.1:${g.httpPort}/announce`;

/** One metric of a process's /metrics, summed over the series matching `labels`. */
async function metric(
  p: ServiceProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(p.adminUrl('/metrics'), { signal: AbortSignal.timeout(30_000) });
  let sum = 0;
  for (const line of (await res.text()).split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Polls until `check` holds, for at most `limitMs` (generous: the machine is loaded). */
async function until(what: string, check: () => Promise<boolean>, limitMs = 60_000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const streamOpen = (g: GatewayProcess): Promise<void> =>
  until(
    `${g.name}: relay stream open`,
    async () => (await metric(g, 'shoal_ws_relay_streams_open')) === 1,
  );

async function open(g: GatewayProcess): Promise<WsClient> {
  const c = await WsClient.open(wsUrl(g));
  clients.push(c);
  return c;
}

async function scrape(c: WsClient, hash: Buffer): Promise<Frame> {
  c.send({ action: 'scrape', info_hash: bin(hash) });
  const files = (await c.next((f) => f.action === 'scrape')).files as Frame;
  return files[bin(hash)] as Frame;
}

describe('WebSocket peers of the split topology, through real processes', () => {
  it('two gateways on one storage-api (memory): offers and answers cross, a killed gateway loses its peer at the first offer, a storage-api restart is survived', async () => {
    const token = randomBytes(24).toString('hex');
    const api = await storageApi(token, { PEER_STORE_DRIVER: 'memory' });
    const a = await gatewayOf(api, token);
    const b = await gatewayOf(api, token);
    await Promise.all([streamOpen(a), streamOpen(b)]);
    const hash = hashOf('ws-split-memory');

    const onA = await open(a);
    const onB = await open(b);
    await offerAndAnswer(onA, onB, hash, peerIdFor);
    // The offer came to A from B, the answer to B from A: both through storage-api.
    expect(await metric(a, 'shoal_ws_relayed_total', { kind: 'offer', scope: 'remote' })).toBe(1);
    expect(await metric(b, 'shoal_ws_relayed_total', { kind: 'answer', scope: 'remote' })).toBe(1);
    expect(await metric(api, 'shoal_ws_relay_stream_messages_total', { outcome: 'local' })).toBe(2);
    expect(await metric(api, 'shoal_ws_relay_streams')).toBe(2);
    // Both gateways see one swarm.
    const onB2 = await open(b);
    expect(await scrape(onB2, hash)).toMatchObject({ complete: 1, incomplete: 1 });

    // Gateway A dies without leaving: its stream ends with its process, its peer stays listed...
    await a.kill();
    await until(
      'storage-api saw the stream end',
      async () => (await metric(api, 'shoal_ws_relay_streams')) === 1,
    );
    expect(await scrape(onB2, hash)).toMatchObject({ incomplete: 1 });
    // ...until the first offer routed to it is answered "gone", and the sender takes it out.
    onB2.send(announceFrame(hash, peerIdFor(3), { event: 'started', offers: offers(3, 'c') }));
    expect(await onB2.next(isAnnounceAnswer)).toMatchObject({ incomplete: 2 });
    await onB.next(isOffer);
    await until(
      'the dead gateway peer left',
      async () => (await scrape(onB2, hash)).incomplete === 1,
    );
    expect(await metric(b, 'shoal_ws_relay_dropped_total', { kind: 'offer', reason: 'gone' })).toBe(
      1,
    );
    expect(await metric(api, 'shoal_ws_relay_stream_messages_total', { outcome: 'gone' })).toBe(1);

    // storage-api restarts (memory: the swarms start empty). Meanwhile announces get a coded
    // "retry later" and WebSocket serving goes on; afterwards the stream is open again and
    // browsers meet as before.
    await api.stop();
    await until(
      'the gateway saw the stream end',
      async () => (await metric(b, 'shoal_ws_relay_streams_open')) === 0,
    );
    onB2.send(announceFrame(hash, peerIdFor(3)));
    const failure = await onB2.next(isFailure);
    expect(String(failure['failure reason'])).toMatch(/\[STORE_ERR_(UNAVAILABLE|TIMEOUT)\]/);
    await api.restart();
    await streamOpen(b);
    // The breaker lets announces through again once storage-api answers its probe.
    await until('announces served again', async () => {
      onB2.send({ action: 'scrape', info_hash: bin(hash) });
      return !isFailure(await onB2.next((f) => f.action === 'scrape'));
    });
    expect(await metric(b, 'shoal_ws_relay_stream_connects_total', { outcome: 'lost' })).toBe(1);
    const c = await gatewayOf(api, token);
    await streamOpen(c);
    const onC = await open(c);
    const onB3 = await open(b);
    await offerAndAnswer(onC, onB3, hashOf('ws-split-after-restart'), (n) => peerIdFor(10 + n));
  }, 300_000);

  it('two gateways on two storage-api replicas sharing one redis-server: offers and answers cross replicas through Redis', async () => {
    const redis: RedisServer = await startRedis();
    stops.push(() => redis.close());
    const token = randomBytes(24).toString('hex');
    const env = {
      PEER_STORE_DRIVER: 'redis',
      REDIS_ADDRESSES: redis.address,
      ...(redis.password === undefined ? {} : { REDIS_PASSWORD: redis.password }),
    };
    const api1 = await storageApi(token, env);
    const api2 = await storageApi(token, env);
    const a = await gatewayOf(api1, token);
    const b = await gatewayOf(api2, token);
    await Promise.all([streamOpen(a), streamOpen(b)]);
    const hash = hashOf('ws-split-redis');
    const onA = await open(a);
    const onB = await open(b);
    await offerAndAnswer(onA, onB, hash, peerIdFor);
    expect(await metric(a, 'shoal_ws_relayed_total', { kind: 'offer', scope: 'remote' })).toBe(1);
    expect(await metric(b, 'shoal_ws_relayed_total', { kind: 'answer', scope: 'remote' })).toBe(1);
    // Each replica published one message to the other, which pushed it on its stream.
    for (const api of [api1, api2]) {
      expect(
        await metric(api, 'shoal_ws_relay_stream_messages_total', { outcome: 'forwarded' }),
      ).toBe(1);
      expect(await metric(api, 'shoal_ws_relay_stream_messages_total', { outcome: 'local' })).toBe(
        1,
      );
    }
    // One swarm, whichever replica a gateway's batches reach.
    expect(await scrape(onA, hash)).toMatchObject({ complete: 1, incomplete: 1 });

    // A gateway killed on replica 1: replica 2 publishes to its channel, nobody listens: gone.
    await a.kill();
    await until(
      'replica 1 saw the stream end',
      async () => (await metric(api1, 'shoal_ws_relay_streams')) === 0,
    );
    const onB2 = await open(b);
    onB2.send(announceFrame(hash, peerIdFor(3), { event: 'started', offers: offers(3, 'c') }));
    expect(await onB2.next(isAnnounceAnswer)).toMatchObject({ incomplete: 2 });
    await until(
      'the dead gateway peer left',
      async () => (await scrape(onB2, hash)).incomplete === 1,
    );
    expect(await metric(api2, 'shoal_ws_relay_stream_messages_total', { outcome: 'gone' })).toBe(1);
  }, 300_000);
});
