// UDP connection IDs are stateless and keyed by a secret every replica shares
// (docs/decisions.md "Tracker semantics"), so behind a load balancer a client may connect on one
// gateway and announce on another. Two gateway processes prove it.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import {
  announcePacket,
  randomInfoHash,
  randomPeerId,
  UDP_ACTION,
  UdpTrackerClient,
} from '@shoal/testing/tracker-client';

const shared = randomBytes(32).toString('hex');
let a: GatewayProcess;
let b: GatewayProcess;
let stranger: GatewayProcess;

beforeAll(async () => {
  [a, b, stranger] = await Promise.all([
    startGateway({ UDP_CONNECTION_ID_SECRET: shared }),
    startGateway({ UDP_CONNECTION_ID_SECRET: shared }),
    startGateway({ UDP_CONNECTION_ID_SECRET: randomBytes(32).toString('hex') }),
  ]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), stranger?.stop()]);
});

describe('gateway replicas', () => {
  it('accept a connection id issued by another replica with the same secret, and only then', async () => {
    const toA = await UdpTrackerClient.open(a.udpPort);
    try {
      const connectionId = await toA.connect();
      const announce = {
        infoHash: randomInfoHash(),
        peerId: randomPeerId(),
        port: 53_001,
        left: 0n,
        event: 'started' as const,
      };

      const toB = await UdpTrackerClient.open(b.udpPort);
      const toStranger = await UdpTrackerClient.open(stranger.udpPort);
      try {
        const onB = await toB.announce(announce, connectionId);
        expect(onB).toMatchObject({ seeders: 1, leechers: 0, peers: [] });

        const tid = toStranger.transactionId();
        const refused = await toStranger.exchange(announcePacket(connectionId, tid, announce), tid);
        expect(refused?.action).toBe(UDP_ACTION.error);
        expect(refused?.packet.subarray(8).toString('utf8')).not.toBe('');
        // The stranger still serves clients that connect to it.
        const ownId = await toStranger.connect();
        expect(await toStranger.announce(announce, ownId)).toMatchObject({ seeders: 1 });
      } finally {
        await toB.close();
        await toStranger.close();
      }
    } finally {
      await toA.close();
    }
  });
});
