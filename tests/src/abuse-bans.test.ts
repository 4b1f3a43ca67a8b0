// Bans the tracker applies by itself (docs/policy.md "Abuse control"), as
// processes: two gateways on one storage-api, ABUSE_BAN_STRIKES=5. A source
// that sends five announces with bad UDP connection ids to gateway A is banned
// there at once; the ban is policy data, so gateway B enforces it within a
// refresh (its UDP packets dropped unanswered, its HTTP announces refused with
// POLICY_ERR_BANNED); shoalctl lists it and lifts it, and both gateways
// answer again. An operator's ban made with shoalctl works the same way.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run } from '@shoal/cli';
import {
  startGateway,
  startService,
  storageApiEnv,
  type GatewayProcess,
  type ServiceProcess,
} from '@shoal/testing/launcher';
import { waitFor } from '@shoal/testing/processes';
import {
  announcePacket,
  connectPacket,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
} from '@shoal/testing/tracker-client';
import { fetchText, httpAnnounceOutcome, sumSamples } from './harness/policy.ts';

const CONVERGE_MS = 15_000;
let api: ServiceProcess | undefined;
let gateways: GatewayProcess[] = [];
let apiUrl = '';
const adminToken = randomBytes(24).toString('hex');

beforeAll(async () => {
  const token = randomBytes(24).toString('hex');
  api = await startService({
    service: 'storage-api',
    env: storageApiEnv(token, 'memory', { STORAGE_API_ADMIN_TOKEN: adminToken }),
  });
  apiUrl = `http://127.0.0.1:${Number(api.listening.port)}`;
  const secret = randomBytes(32).toString('hex');
  gateways = await Promise.all(
    ['a', 'b'].map(() =>
      startGateway({
        STORAGE_DRIVER: 'remote',
        STORAGE_API_URL: apiUrl,
        STORAGE_API_TOKEN: token,
        UDP_CONNECTION_ID_SECRET: secret,
        ABUSE_BAN_STRIKES: '5',
        ABUSE_BAN_SECONDS: '600',
        POLICY_REFRESH_SECONDS: '1',
      }),
    ),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await api?.stop();
}, 60_000);

async function shoalctl(...args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const status = await run([...args, '--url', apiUrl, '--token', adminToken], {
    env: {},
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  if (status !== 0) throw new Error(`shoalctl ${args.join(' ')}: exit ${status}: ${err}`);
  return out;
}

const metric = async (g: GatewayProcess, name: string, labels: Record<string, string>) =>
  sumSamples(await fetchText(`http://127.0.0.1:${g.adminPort}/metrics`), [name], labels);

/** A UDP connect answered (true) or dropped; a drop is also read from the gateway's counter. */
async function connects(g: GatewayProcess, client: UdpTrackerClient): Promise<boolean> {
  const tid = randomBytes(4).readUInt32BE(0);
  const reply = await client.exchange(connectPacket(tid), tid, 1_000, {
    port: g.udpPort,
    host: '127.0.0.1',
  });
  return reply !== undefined;
}

const announce = (g: GatewayProcess) =>
  httpAnnounceOutcome(g.announceUrl('http'), {
    infoHash: randomInfoHash(),
    peerId: randomPeerId(),
    port: 42_001,
    left: 0n,
    event: 'started',
  });

it('bans a source flooding bad connection ids on every gateway, lists it, and lifts it', async () => {
  const [a, b] = gateways as [GatewayProcess, GatewayProcess];
  const client = await UdpTrackerClient.open(a.udpPort);
  try {
    expect(await connects(a, client)).toBe(true);
    // Five announces with a connection id no gateway issued.
    const bogus = Buffer.alloc(8, 0x42);
    for (let i = 0; i < 5; i++) {
      const tid = 1000 + i;
      const packet = announcePacket(bogus, tid, {
        infoHash: randomInfoHash(),
        peerId: randomPeerId(),
        port: 42_000,
        left: 0n,
      });
      await client.exchange(packet, tid, 2_000);
    }
    expect(await metric(a, 'shoal_abuse_bans_total', { reason: 'bad_connection_id' })).toBe(1);
    // Gateway A drops the banned source at once, unanswered.
    expect(await connects(a, client)).toBe(false);
    expect(
      await metric(a, 'shoal_udp_dropped_packets_total', { reason: 'banned' }),
    ).toBeGreaterThan(0);

    const listed = JSON.parse(await shoalctl('bans', 'list', '--json')) as {
      bans: Array<{ address: string; reason: string; until: string }>;
    };
    expect(listed.bans).toEqual([
      expect.objectContaining({ address: '127.0.0.1', reason: 'bad_connection_id' }),
    ]);
    const until = Date.parse(listed.bans[0]!.until);
    expect(until - Date.now()).toBeGreaterThan(500_000);

    // Gateway B enforces it from its next refresh: HTTP refused, UDP dropped.
    await waitFor(
      'gateway B to refuse the banned source',
      async () => {
        const o = await announce(b);
        return !o.ok && o.code === 'POLICY_ERR_BANNED';
      },
      CONVERGE_MS,
    );
    expect(await connects(b, client)).toBe(false);

    // Lifted by an operator: both answer again within a refresh.
    expect(await shoalctl('bans', 'remove', '127.0.0.1')).toContain('lifted');
    await waitFor(
      'both gateways to answer again',
      async () => {
        const [ua, ub] = [await connects(a, client), await connects(b, client)];
        return ua && ub && (await announce(b)).ok;
      },
      CONVERGE_MS,
    );
    expect(JSON.parse(await shoalctl('bans', 'list', '--json'))).toEqual({ bans: [] });

    // An operator's own ban reaches the gateways the same way.
    expect(await shoalctl('bans', 'add', '127.0.0.1', '--ttl', '10m', '--note', 'drill')).toContain(
      'banned 127.0.0.1',
    );
    await waitFor(
      'gateway A to refuse the source an operator banned',
      async () => {
        const o = await announce(a);
        return !o.ok && o.code === 'POLICY_ERR_BANNED';
      },
      CONVERGE_MS,
    );
    await shoalctl('bans', 'rm', '127.0.0.1');
    await waitFor('gateway A to answer again', async () => (await announce(a)).ok, CONVERGE_MS);
  } finally {
    await client.close();
  }
});
