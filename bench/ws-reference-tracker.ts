// bittorrent-tracker's own server with only its WebSocket tracker, the
// reference that bench/ws-load.sh measures Shoal's WebSocket frontend
// against. Prints `{"listening":PORT}` once it listens on 127.0.0.1 (port 0,
// or the first argument); SIGTERM stops it.
import type { AddressInfo } from 'node:net';
import Server from 'bittorrent-tracker/server';

const server = new Server({ http: false, udp: false, ws: true, stats: false });
server.on('warning', () => undefined);
server.on('error', (err: Error) => {
  console.error(err);
  process.exit(1);
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const addr = server.ws?.address() as AddressInfo;
  console.log(JSON.stringify({ listening: addr.port, pid: process.pid }));
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
