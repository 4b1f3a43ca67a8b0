// Free loopback ports for servers that cannot bind port 0 themselves and
// report it back (redis-server, postgres, real BitTorrent clients).
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no address'));
      srv.close(() => resolve(addr.port));
    });
  });
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
