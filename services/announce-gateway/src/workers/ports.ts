// docs/workers.md "Ports": workers bind a fixed port with SO_REUSEPORT, which
// lets any other process of the same user that asks for it share the port
// and silently take part of its traffic (a stale gateway, a second copy). So
// before the workers start, the main thread binds each fixed port once
// without SO_REUSEPORT and lets go: a port that anybody holds, with or without
// SO_REUSEPORT, stops the start as EADDRINUSE does for a single thread.
import { createSocket } from 'node:dgram';
import { createServer, isIP } from 'node:net';

export interface PortsToClaim {
  host: string;
  udp: number[];
  tcp: number[];
}

/** Rejects with a message naming the first port in use; resolves once every port was bound and let go. */
export async function checkPortsFree(ports: PortsToClaim): Promise<void> {
  for (const port of ports.udp) await probe(port, 'udp', () => bindUdp(ports.host, port));
  for (const port of ports.tcp) await probe(port, 'tcp', () => listenTcp(ports.host, port));
}

async function probe(port: number, proto: 'udp' | 'tcp', bind: () => Promise<void>): Promise<void> {
  try {
    await bind();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'is in use by another process (with SO_REUSEPORT it would share the traffic: docs/workers.md "Ports")'
        : `cannot be bound (${code ?? String(err)})`;
    throw Object.assign(new Error(`port ${port}/${proto} ${why}`), { code, cause: err });
  }
}

function bindUdp(host: string, port: number): Promise<void> {
  const socket = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', ipv6Only: false });
  return new Promise((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve()));
  });
}

/** Listens on `host:port` without SO_REUSEPORT and closes at once; rejects if it cannot. */
export function listenTcp(host: string, port: number): Promise<void> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve()));
  });
}
