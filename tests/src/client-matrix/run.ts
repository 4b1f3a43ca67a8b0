// The real-client matrix (docs/client-backoff.md): every client of CLIENTS
// leeches one torrent per answer of CASES, each torrent announcing to its own
// scripted listener on 127.0.0.1 (or Shoal's own gateway with its store down,
// the gateway-* answers); the run records when each announce arrives
// and prints the gaps between them as the table docs/client-backoff.md
// keeps. Outside `make test`: it waits WINDOW_SECONDS (default 420) for the
// clients' own timers. Loopback only; every client is stopped at the end.
//   node tests/src/client-matrix/run.ts [--json FILE] [client...]
//   env: WINDOW_SECONDS RETRY_LATER_SECONDS SHED_SECONDS
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClient, writeTorrent, type RunningClient } from './clients.ts';
import { CASES, CLIENTS, formatTable, rowOf, type ClientId, type Row } from './table.ts';
import { describeCase, listen, type Listener, type Timings } from './tracker.ts';

function seconds(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
  return v;
}

const argv = process.argv.slice(2);
const jsonAt = argv.indexOf('--json');
const jsonFile = jsonAt === -1 ? undefined : argv[jsonAt + 1];
const named = jsonAt === -1 ? argv : argv.filter((_, i) => i !== jsonAt && i !== jsonAt + 1);
const unknown = named.filter((a) => !(CLIENTS as readonly string[]).includes(a));
if (unknown.length > 0) throw new Error(`unknown clients: ${unknown.join(', ')}`);
const clients = (named.length > 0 ? named : [...CLIENTS]) as ClientId[];

const windowSeconds = seconds('WINDOW_SECONDS', 420);
const timings: Timings = {
  retryLaterSeconds: seconds('RETRY_LATER_SECONDS', 120),
  shedSeconds: seconds('SHED_SECONDS', 240),
};

const root = mkdtempSync(join(tmpdir(), 'shoal-client-matrix-'));
const t0 = performance.now();
const listeners = new Map<ClientId, Listener[]>();
const running: RunningClient[] = [];
try {
  for (const id of clients) {
    const dir = join(root, id);
    const own = await Promise.all(CASES.map((c) => listen(c, timings, t0)));
    listeners.set(id, own);
    mkdirSync(join(dir, 'torrents'), { recursive: true });
    const torrents = own.map((l) =>
      writeTorrent(join(dir, 'torrents'), `matrix-${id}-${l.answer}`, l.url),
    );
    running.push(await startClient(id, dir, torrents));
  }
  console.error(`client matrix: ${clients.join(', ')} for ${windowSeconds} s (${root})`);
  const deadline = t0 + windowSeconds * 1000;
  while (performance.now() < deadline) {
    const dead = running.filter((c) => !c.process.alive());
    if (dead.length > 0)
      throw new Error(`client exited early:\n${dead.map((c) => c.process.describe()).join('\n')}`);
    await new Promise((r) => setTimeout(r, Math.min(5000, deadline - performance.now())));
  }
} finally {
  for (const own of listeners.values()) for (const l of own) l.stop();
  await Promise.all(running.map((c) => c.process.stop(5000)));
  for (const own of listeners.values()) await Promise.all(own.map((l) => l.close()));
}

const end = windowSeconds;
const rows: Row[] = [];
for (const id of clients)
  for (const l of listeners.get(id) ?? []) rows.push(rowOf(id, l.answer, l.times, end));

console.log(
  `Window ${windowSeconds} s; failure interval ${timings.retryLaterSeconds} s, shed interval ${timings.shedSeconds} s.\n`,
);
for (const c of running) console.log(`- ${c.id}: ${c.version}; ${c.settings}`);
console.log('');
for (const c of CASES) console.log(`- \`${c}\`: ${describeCase(c, timings)}`);
console.log('\nScrapes get the answer announces get; in the shed cases, zeros.');
console.log(`\n${formatTable(rows)}`);
if (jsonFile !== undefined) {
  const times = Object.fromEntries(
    clients.map((id) => [
      id,
      Object.fromEntries((listeners.get(id) ?? []).map((l) => [l.answer, l.times])),
    ]),
  );
  writeFileSync(jsonFile, JSON.stringify({ windowSeconds, timings, times, rows }, null, 2));
}
rmSync(root, { recursive: true, force: true });
