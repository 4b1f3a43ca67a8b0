// The gc-worker process: reads the environment, picks the elector, listens,
// and on SIGTERM finishes its run, releases the lease and exits 0.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { isConfigError } from '@shoal/config';
import { buildGcWorker } from './app.ts';
import { electionMode, loadGcWorkerConfig, type GcWorkerConfig } from './config.ts';
import { createNoElection } from './election/loop.ts';
import { createStorageApiLeaseElector } from './election/storage-api.ts';
import type { ElectionTiming, LeaderElector } from './election/types.ts';
import { createStorageApiClient } from './storage-api-client.ts';
import { exitOnSignals, logListening } from '@shoal/service';

function loadOrExit(): GcWorkerConfig {
  try {
    return loadGcWorkerConfig({ env: process.env, argv: process.argv.slice(2) });
  } catch (err) {
    if (!isConfigError(err)) throw err;
    process.stderr.write(`gc-worker: ${err.message}\n`);
    process.exit(1);
  }
}

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function namespaceOf(config: GcWorkerConfig): string {
  if (config.POD_NAMESPACE !== undefined) return config.POD_NAMESPACE;
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

const config = loadOrExit();
const logger = pino({
  level: config.LOG_LEVEL,
  base: { service: 'gc-worker', pid: process.pid },
  redact: ['STORAGE_API_TOKEN', '*.STORAGE_API_TOKEN'],
});
// A random suffix, as client-go users do: a restarted pod with the same name
// must win the lease by election, not inherit its predecessor's.
const identity =
  config.HOLDER_IDENTITY ?? `${config.POD_NAME ?? hostname()}_${randomUUID().slice(0, 8)}`;
const timing: ElectionTiming = {
  leaseDurationMs: config.LEASE_DURATION_SECONDS * 1000,
  renewDeadlineMs: config.RENEW_DEADLINE_SECONDS * 1000,
  retryPeriodMs: config.RETRY_PERIOD_SECONDS * 1000,
};
const client = createStorageApiClient({
  url: config.STORAGE_API_URL,
  token: config.STORAGE_API_TOKEN,
  timeoutMs: config.STORAGE_API_TIMEOUT_SECONDS * 1000,
  clientId: identity,
});

async function makeElector(): Promise<LeaderElector> {
  const mode = electionMode(config);
  switch (mode) {
    case 'none':
      return createNoElection(identity);
    case 'storage-api':
      return createStorageApiLeaseElector({
        client,
        leaseName: config.LEASE_NAME,
        identity,
        timing,
        logger,
      });
    case 'kubernetes': {
      // Loaded only here: client-node is large and unused outside a cluster.
      const [{ KubeConfig, CoordinationV1Api }, { createKubernetesLeaseElector }] =
        await Promise.all([import('@kubernetes/client-node'), import('./election/kubernetes.ts')]);
      const kc = new KubeConfig();
      kc.loadFromDefault();
      return createKubernetesLeaseElector({
        api: kc.makeApiClient(CoordinationV1Api),
        namespace: namespaceOf(config),
        leaseName: config.LEASE_NAME,
        identity,
        timing,
        logger,
      });
    }
  }
}

let elector: LeaderElector;
try {
  elector = await makeElector();
} catch (err) {
  logger.fatal({ err }, 'cannot set up leader election');
  process.exit(1);
}
const app = buildGcWorker({
  config,
  logger,
  registry: new Registry(),
  elector,
  gc: (signal) => client.collectGarbage(signal),
});

let ports;
try {
  ports = await app.listen();
} catch (err) {
  logger.fatal({ err }, 'cannot listen');
  process.exit(1);
}
logListening(logger, {
  admin: ports.adminPort,
  election: elector.mode,
  identity,
  lease: config.LEASE_NAME,
  intervalSeconds: config.GC_INTERVAL_SECONDS,
});

exitOnSignals(logger, config.SHUTDOWN_GRACE_SECONDS, async () => {
  await app.close();
  await client.close();
});
