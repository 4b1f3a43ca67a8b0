// deploy/local/up.sh, down.sh and status.sh run this: `up` starts the local
// topology detached and returns once every service is ready; `down` stops it
// from the pids in <stateDir>/topology.json and leaves no process behind.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  isAlive,
  readTopology,
  startLocalTopology,
  stopTopology,
  type TopologyEndpoints,
} from './topology.ts';

const [command = 'help', ...rest] = process.argv.slice(2);
const flag = rest.indexOf('--state-dir');
const stateDir =
  flag >= 0 && rest[flag + 1] !== undefined
    ? rest[flag + 1]!
    : (process.env.SHOAL_LOCAL_STATE_DIR ?? '/tmp/shoal-local');

function print(t: TopologyEndpoints): void {
  const lines = [
    'Shoal local topology is up.',
    '',
    ...t.gateways.flatMap((g) => [
      `${g.name}:`,
      `  announce (HTTP)  ${g.httpAnnounce}`,
      `  announce (UDP)   ${g.udpAnnounce}`,
      `  scrape           ${g.scrape}`,
      `  admin / metrics  ${g.admin}/readyz  ${g.metrics}`,
    ]),
    'storage-api:',
    `  API              ${t.storageApi.url}  (Bearer token in topology.json)`,
    `  admin / metrics  ${t.storageApi.admin}/readyz  ${t.storageApi.metrics}`,
    `  policy admin     SHOAL_URL=${t.storageApi.url} SHOAL_ADMIN_TOKEN=<storageApi.adminToken in topology.json> shoalctl ...`,
    'gc-worker:',
    `  admin / metrics  ${t.gcWorker.admin}/readyz  ${t.gcWorker.metrics}`,
    `Redis Sentinel:    master "${t.redis.masterName}", servers ${t.redis.servers.join(' ')}, sentinels ${t.redis.sentinels.join(' ')}`,
    `PostgreSQL:        ${t.postgres.url}`,
    '',
    `Endpoints as JSON: ${join(t.stateDir, 'topology.json')}`,
    `Logs:              ${join(t.stateDir, 'logs')}`,
    'Stop with:         deploy/local/down.sh',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function up(): Promise<number> {
  const existing = readTopology(stateDir);
  if (existing?.processes.some((p) => isAlive(p.pid)) === true) {
    process.stderr.write(
      `a topology is already running from ${stateDir}; run deploy/local/down.sh first\n`,
    );
    return 1;
  }
  if (existing !== undefined) await down(true);
  const t = await startLocalTopology({ stateDir, detached: true });
  print(t);
  return 0;
}

async function down(quiet = false): Promise<number> {
  const t = readTopology(stateDir);
  if (t === undefined) {
    if (!quiet) process.stdout.write(`nothing to stop: no ${join(stateDir, 'topology.json')}\n`);
    return 0;
  }
  await stopTopology(t);
  const left = t.processes.filter((p) => isAlive(p.pid));
  // Data goes, logs stay for a look after the fact.
  for (const entry of readdirSync(stateDir)) {
    if (entry !== 'logs') rmSync(join(stateDir, entry), { recursive: true, force: true });
  }
  if (left.length > 0) {
    process.stderr.write(`still running: ${left.map((p) => `${p.name} (${p.pid})`).join(', ')}\n`);
    return 1;
  }
  if (!quiet)
    process.stdout.write(
      `stopped ${t.processes.length} processes; logs kept in ${join(stateDir, 'logs')}\n`,
    );
  return 0;
}

function status(): number {
  const t = readTopology(stateDir);
  if (t === undefined) {
    process.stdout.write('not running\n');
    return 1;
  }
  for (const p of t.processes)
    process.stdout.write(`${isAlive(p.pid) ? 'up  ' : 'DOWN'}  ${p.name}  pid ${p.pid}\n`);
  return t.processes.every((p) => isAlive(p.pid)) ? 0 : 1;
}

let code: number;
try {
  switch (command) {
    case 'up':
      code = await up();
      break;
    case 'down':
      code = await down();
      break;
    case 'status':
      code = status();
      break;
    default:
      process.stdout.write(
        'usage: topology-cli.ts up|down|status [--state-dir DIR]  (default $SHOAL_LOCAL_STATE_DIR or /tmp/shoal-local)\n',
      );
      code = command === 'help' ? 0 : 2;
  }
} catch (err) {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  code = 1;
}
process.exit(code);
