// Failure answers say when to come back (docs/decisions.md "Failure answers"),
// checked over real sockets: a retry later carries `interval` and
// `min interval` of RETRY_LATER_INTERVAL_SECONDS (libtorrent would otherwise
// wait its default 1800 s) and BEP 31 `retry in`; a refusal that retrying
// cannot change carries REFUSAL_INTERVAL_SECONDS and no `retry in`; UDP
// answers both with an error action, which clients back off from themselves.
import { afterEach, describe, expect, it } from 'vitest';
import { UDP_ACTION_ERROR } from '@shoal/protocol';
import type { GatewayStorage } from './storage.ts';
import {
  UdpClient,
  announceQuery,
  bdict,
  hashOf,
  makeGateway,
  udpConnect,
  unavailableStorage,
  type AnnounceParams,
  type BValue,
  type TestGateway,
} from '../test/support.ts';

const LOOPBACK = '127.0.0.1';
const SECRET = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

const failing = unavailableStorage();

interface Running {
  t: TestGateway;
  http: number;
  udp: number;
  client: UdpClient;
}

const open: Running[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    await r.client.close();
    await r.t.close();
  }
});

async function start(env: Record<string, string>, storage?: GatewayStorage): Promise<Running> {
  const t = makeGateway(
    { UDP_CONNECTION_ID_SECRET: SECRET, ...env },
    storage === undefined ? {} : { storage },
  );
  const ports = await t.gateway.listen();
  await t.gateway.policy?.refresh();
  const client = new UdpClient('udp4');
  await client.bind(LOOPBACK);
  const r = { t, http: ports.httpPort!, udp: ports.udpPort!, client };
  open.push(r);
  return r;
}

async function httpAnnounce(
  r: Running,
  p: AnnounceParams,
  path = '/announce',
): Promise<Record<string, BValue>> {
  const res = await fetch(`http://${LOOPBACK}:${r.http}${path}?${announceQuery(p)}`);
  expect(res.status).toBe(200);
  return bdict(Buffer.from(await res.arrayBuffer()));
}

function timing(body: Record<string, BValue>) {
  return {
    reason: (body['failure reason'] as Buffer).toString('utf8'),
    interval: body['interval'],
    minInterval: body['min interval'],
    retryIn: body['retry in'],
  };
}

/** The text of a UDP error action answering an announce, or undefined for any other answer. */
async function udpError(r: Running, infoHash: Buffer): Promise<string | undefined> {
  const id = await udpConnect(r.client, r.udp, LOOPBACK);
  const answer = await r.client.announce(id, { infoHash, port: 6881 }, r.udp, LOOPBACK);
  if (answer === undefined || answer.readUInt32BE(0) !== UDP_ACTION_ERROR) return undefined;
  return answer.subarray(8).toString('utf8');
}

describe('failure answers', () => {
  it('a storage outage asks clients back after RETRY_LATER_INTERVAL_SECONDS', async () => {
    const r = await start({ RETRY_LATER_INTERVAL_SECONDS: '150' }, failing);
    const body = await httpAnnounce(r, { infoHash: hashOf('outage'), port: 6881 });
    expect(timing(body)).toEqual({
      reason: 'tracker storage unavailable, retry later [STORE_ERR_UNAVAILABLE]',
      interval: 150,
      minInterval: 150,
      retryIn: 3, // BEP 31 minutes, rounded up
    });
    expect(await udpError(r, hashOf('outage'))).toBe(
      'tracker storage unavailable, retry later [STORE_ERR_UNAVAILABLE]',
    );
  });

  it('defaults: 300 s for a retry later, 3600 s for a refusal', async () => {
    const outage = await start({}, failing);
    expect(timing(await httpAnnounce(outage, { infoHash: hashOf('a'), port: 6881 }))).toMatchObject(
      { interval: 300, minInterval: 300, retryIn: 5 },
    );
    const allow = await start({ TORRENT_APPROVAL: 'allow' });
    expect(timing(await httpAnnounce(allow, { infoHash: hashOf('b'), port: 6881 }))).toEqual({
      reason: 'torrent not registered with this tracker [POLICY_ERR_TORRENT_NOT_ALLOWED]',
      interval: 3600,
      minInterval: 3600,
      retryIn: undefined,
    });
  });

  it('refusals that retrying cannot change carry REFUSAL_INTERVAL_SECONDS and no retry in', async () => {
    const env = { REFUSAL_INTERVAL_SECONDS: '5400' };
    const allow = await start({ ...env, TORRENT_APPROVAL: 'allow' });
    const unregistered = await httpAnnounce(allow, { infoHash: hashOf('unlisted'), port: 6881 });
    expect(timing(unregistered)).toMatchObject({ interval: 5400, minInterval: 5400 });
    expect(unregistered['retry in']).toBeUndefined();
    expect(await udpError(allow, hashOf('unlisted'))).toBe(
      'torrent not registered with this tracker [POLICY_ERR_TORRENT_NOT_ALLOWED]',
    );

    const priv = await start({ ...env, PASSKEY_REQUIRED: 'true' });
    const passkey = await httpAnnounce(
      priv,
      { infoHash: hashOf('private'), port: 6881 },
      '/announce/nosuchpasskey123',
    );
    expect(timing(passkey)).toEqual({
      reason: 'unknown passkey [POLICY_ERR_PASSKEY_UNKNOWN]',
      interval: 5400,
      minInterval: 5400,
      retryIn: undefined,
    });

    const open = await start(env);
    const res = await fetch(`http://${LOOPBACK}:${open.http}/announce?info_hash=%00%01&port=1`);
    const malformed = timing(bdict(Buffer.from(await res.arrayBuffer())));
    expect(malformed.reason).toMatch(/\[PROTO_ERR_[A-Z_]+\]$/);
    expect(malformed).toMatchObject({ interval: 5400, minInterval: 5400, retryIn: undefined });
  });

  it('a rate limit is a retry later: it lifts by itself', async () => {
    const r = await start({
      RATE_LIMIT_ANNOUNCES_PER_SECOND: '0.001',
      RATE_LIMIT_ANNOUNCE_BURST: '1',
      RETRY_LATER_INTERVAL_SECONDS: '240',
    });
    const first = await httpAnnounce(r, { infoHash: hashOf('rl'), port: 6881 });
    expect(first['failure reason']).toBeUndefined();
    const limited = await httpAnnounce(r, { infoHash: hashOf('rl'), port: 6881 });
    expect(timing(limited)).toEqual({
      reason: 'too many requests from your address, slow down [POLICY_ERR_RATE_LIMITED]',
      interval: 240,
      minInterval: 240,
      retryIn: 4,
    });
  });
});
