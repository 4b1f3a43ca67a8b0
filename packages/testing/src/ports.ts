// Free loopback ports for servers that cannot bind port 0 themselves and
// report it back (redis-server, postgres, real BitTorrent clients).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

/**
 * Ports are picked below the kernel's ephemeral range: a number from that
 * range can be handed to any outgoing connection (a client socket of another
 * test, a Redis replica's link) between the pick and the server's bind, which
 * made servers fail with "Address already in use" on a busy machine.
 */
function pickRange(): [number, number] {
  let low = 32768;
  try {
    const first = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    if (Number.isInteger(first) && first > 2048) low = first;
  } catch {
    // Not Linux: keep the IANA ephemeral range's usual lower bound.
  }
  return [Math.max(1024, low - 22_000), low - 1];
}
const [PICK_LOW, PICK_HIGH] = pickRange();

function bindTcp(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => resolve(addr !== null && typeof addr !== 'string' ? addr.port : undefined));
    });
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago, below the ephemeral range. */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = PICK_LOW + Math.floor(Math.random() * (PICK_HIGH - PICK_LOW + 1));
    if ((await bindTcp(port, host)) !== undefined) return port;
  }
  const port = await bindTcp(0, host);
  if (port === undefined) throw new Error(`no free TCP port on ${host}`);
  return port;
}

/** A port free for both TCP and UDP on 127.0.0.1 (trackers serve both on one number). */
export async function freeTcpUdpPort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freeTcpPort(host);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no port free for both TCP and UDP');
}
