// The launcher (./launcher.ts) for shell scripts: bench/lib.sh starts and
// stops Shoal's services through it, as the tests do. docs/testing.md.
//   launcher-cli.ts start [--tree DIR] SERVICE LOG [KEY=VALUE...]
//     runs services/SERVICE/src/main.ts of DIR (default this checkout) in
//     that folder, detached, with exactly the KEY=VALUE settings (plus PATH,
//     HOME, TMPDIR, LANG, LC_ALL, TZ), its output in LOG (a *.log path);
//     waits for its "listening" line and prints its pid. Exit 1, with its
//     output on stderr, when it does not come up.
//   launcher-cli.ts stop PID...
//     SIGTERM to each one's process group, SIGKILL after 15 s; returns once
//     all are gone.
import { basename, dirname, join, resolve } from 'node:path';
import { REPO_ROOT, startService, type ServiceName } from './launcher.ts';
import { stopProcess } from './process-group.ts';

const SERVICES: readonly string[] = ['announce-gateway', 'storage-api', 'gc-worker'];

function usage(): never {
  process.stderr.write(
    'usage: launcher-cli.ts start [--tree DIR] SERVICE LOG [KEY=VALUE...] | stop PID...\n',
  );
  process.exit(2);
}

async function start(args: string[]): Promise<void> {
  let tree = REPO_ROOT;
  if (args[0] === '--tree') {
    if (args[1] === undefined) usage();
    tree = resolve(args[1]);
    args = args.slice(2);
  }
  const [service, log, ...settings] = args;
  if (service === undefined || !SERVICES.includes(service)) usage();
  if (log === undefined || !log.endsWith('.log')) usage();
  const env: Record<string, string> = {};
  for (const kv of settings) {
    const eq = kv.indexOf('=');
    if (eq <= 0) usage();
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const dir = join(tree, 'services', service);
  try {
    const svc = await startService({
      service: service as ServiceName,
      name: basename(log, '.log'),
      logDir: dirname(resolve(log)),
      detached: true,
      cwd: dir,
      main: join(dir, 'src/main.ts'),
      env,
      // A gateway with workers loads the modules once per thread: slow on a busy machine.
      timeoutMs: 120_000,
    });
    process.stdout.write(`${svc.pid}\n`);
  } catch (err) {
    process.stderr.write(`${service} did not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

async function stop(pids: string[]): Promise<void> {
  await Promise.all(
    pids.map((pid) =>
      stopProcess({ name: pid, pid: Number(pid), stopSignal: 'SIGTERM', group: true }),
    ),
  );
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'start') await start(rest);
else if (command === 'stop' && rest.every((p) => /^[1-9]\d*$/.test(p))) await stop(rest);
else usage();
// The service is detached; nothing here may keep this process waiting for it.
process.exit(0);
