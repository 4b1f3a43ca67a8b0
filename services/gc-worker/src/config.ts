// gc-worker settings (docs/conventions.md "Config"): where storage-api is, how often to
// collect, and how to elect the one active worker (docs/gc-worker.md).
import {
  Type,
  adminServerSettings,
  configLoader,
  processSettings,
  storageApiToken,
  type LoadedConfig,
} from '@shoal/config';

/** Seconds, fractions allowed so tests can run elections in milliseconds. */
const Seconds = (defaultValue: number, description: string, minimum = 0.05) =>
  Type.Number({ minimum, maximum: 86_400, default: defaultValue, description });

export const configSchema = Type.Object({
  ...adminServerSettings(9092),
  ...processSettings,
  STORAGE_API_URL: Type.String({
    pattern: '^https?://[^\\s/]+(/[^\\s]*)?$',
    default: 'http://127.0.0.1:8080',
    description: "storage-api's API port (not its admin port): `http://host:port`",
  }),
  STORAGE_API_TOKEN: storageApiToken(
    'The token storage-api checks (its STORAGE_API_TOKEN), at least 16 characters',
  ),
  STORAGE_API_TIMEOUT_SECONDS: Seconds(
    30,
    'Every request to storage-api (GC, lease calls) gives up after this long',
  ),
  GC_INTERVAL_SECONDS: Seconds(60, 'Time between two garbage collection runs of the leader'),
  LEADER_ELECTION: Type.Union(
    [
      Type.Literal('auto'),
      Type.Literal('kubernetes'),
      Type.Literal('storage-api'),
      Type.Literal('none'),
    ],
    {
      default: 'auto',
      description:
        'How the one active worker is chosen (docs/gc-worker.md). auto: kubernetes inside a cluster (KUBERNETES_SERVICE_HOST set), else storage-api; kubernetes: a coordination.k8s.io Lease; storage-api: a lease held through storage-api (Redis or PostgreSQL); none: always leader, for exactly one worker',
    },
  ),
  LEASE_NAME: Type.String({
    pattern: '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$',
    default: 'shoal-gc-worker',
    description: 'Name of the Lease or storage-api lock (a DNS-1123 subdomain)',
  }),
  LEASE_DURATION_SECONDS: Seconds(
    15,
    'How long a lease lasts without renewal: a dead leader is replaced within this',
  ),
  RENEW_DEADLINE_SECONDS: Seconds(
    10,
    'A leader that has not renewed within this stops collecting (must be less than LEASE_DURATION_SECONDS)',
  ),
  RETRY_PERIOD_SECONDS: Seconds(
    2,
    'Candidates retry, and leaders renew, this often (must be less than RENEW_DEADLINE_SECONDS)',
  ),
  HOLDER_IDENTITY: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 253,
      description:
        'Identity in the lease; default POD_NAME (or the host name) plus a random suffix',
    }),
  ),
  POD_NAME: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "The pod's name (the chart sets it from the Downward API); the default identity's prefix",
    }),
  ),
  POD_NAMESPACE: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "Namespace of the Lease; default the service account's namespace, else `default`",
    }),
  ),
  KUBERNETES_SERVICE_HOST: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'Set by Kubernetes in every pod; only LEADER_ELECTION=auto reads it',
    }),
  ),
});

export type GcWorkerConfig = LoadedConfig<typeof configSchema>;

export const loadGcWorkerConfig = configLoader(configSchema, {
  // client-go's rules: the lease outlives the renew deadline, so a leader
  // stops working before anyone else may take over.
  check: (c) => {
    const problems = [];
    if (c.RENEW_DEADLINE_SECONDS >= c.LEASE_DURATION_SECONDS) {
      problems.push({
        key: 'RENEW_DEADLINE_SECONDS',
        message: 'must be less than LEASE_DURATION_SECONDS',
      });
    }
    if (c.RETRY_PERIOD_SECONDS >= c.RENEW_DEADLINE_SECONDS) {
      problems.push({
        key: 'RETRY_PERIOD_SECONDS',
        message: 'must be less than RENEW_DEADLINE_SECONDS',
      });
    }
    return problems;
  },
});

export type ElectionMode = 'kubernetes' | 'storage-api' | 'none';

/** LEADER_ELECTION with auto resolved. */
export function electionMode(config: GcWorkerConfig): ElectionMode {
  if (config.LEADER_ELECTION !== 'auto') return config.LEADER_ELECTION;
  return config.KUBERNETES_SERVICE_HOST === undefined ? 'storage-api' : 'kubernetes';
}
