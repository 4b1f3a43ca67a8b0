// gc-worker settings (docs/conventions.md "Config"): where storage-api is, how often to
// collect, and how to elect the one active worker (docs/gc-worker.md).
import {
  LogLevel,
  SECRET,
  Type,
  loadConfig,
  type LoadConfigOptions,
  type LoadedConfig,
} from '@shoal/config';

/** Seconds, fractions allowed so tests can run elections in milliseconds. */
const Seconds = (defaultValue: number, minimum = 0.05) =>
  Type.Number({ minimum, maximum: 86_400, default: defaultValue });

export const configSchema = Type.Object({
  ADMIN_HOST: Type.String({ default: '::' }),
  ADMIN_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 9092 }),
  LOG_LEVEL: LogLevel,
  SHUTDOWN_GRACE_SECONDS: Type.Number({ minimum: 0, maximum: 3600, default: 25 }),
  /** storage-api's API port (not its admin port): http://host:port. */
  STORAGE_API_URL: Type.String({
    pattern: '^https?://[^\\s/]+(/[^\\s]*)?$',
    default: 'http://127.0.0.1:8080',
  }),
  /** The token storage-api checks (its STORAGE_API_TOKEN). */
  STORAGE_API_TOKEN: Type.String({ minLength: 16, ...SECRET }),
  /** Every request to storage-api (GC, lease calls) gives up after this long. */
  STORAGE_API_TIMEOUT_SECONDS: Seconds(30),
  GC_INTERVAL_SECONDS: Seconds(60),
  /**
   * auto: kubernetes inside a cluster (KUBERNETES_SERVICE_HOST set), else
   * storage-api. none: always leader, for exactly one worker.
   */
  LEADER_ELECTION: Type.Union(
    [
      Type.Literal('auto'),
      Type.Literal('kubernetes'),
      Type.Literal('storage-api'),
      Type.Literal('none'),
    ],
    { default: 'auto' },
  ),
  LEASE_NAME: Type.String({
    pattern: '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$',
    default: 'shoal-gc-worker',
  }),
  /** How long a lease lasts without renewal: a dead leader is replaced within this. */
  LEASE_DURATION_SECONDS: Seconds(15),
  /** A leader that has not renewed within this stops collecting (must be < LEASE_DURATION_SECONDS). */
  RENEW_DEADLINE_SECONDS: Seconds(10),
  /** Candidates retry, and leaders renew, this often. */
  RETRY_PERIOD_SECONDS: Seconds(2),
  /** Identity in the lease; default POD_NAME (or the host name) plus a random suffix. */
  HOLDER_IDENTITY: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  POD_NAME: Type.Optional(Type.String({ minLength: 1 })),
  /** Namespace of the Lease; default the service account's namespace, else "default". */
  POD_NAMESPACE: Type.Optional(Type.String({ minLength: 1 })),
  /** Set by Kubernetes in every pod; only LEADER_ELECTION=auto reads it. */
  KUBERNETES_SERVICE_HOST: Type.Optional(Type.String({ minLength: 1 })),
});

export type GcWorkerConfig = LoadedConfig<typeof configSchema>;

export function loadGcWorkerConfig(
  options: Pick<LoadConfigOptions<typeof configSchema>, 'env' | 'argv' | 'file'> = {},
): GcWorkerConfig {
  return loadConfig(configSchema, {
    ...options,
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
}

export type ElectionMode = 'kubernetes' | 'storage-api' | 'none';

/** LEADER_ELECTION with auto resolved. */
export function electionMode(config: GcWorkerConfig): ElectionMode {
  if (config.LEADER_ELECTION !== 'auto') return config.LEADER_ELECTION;
  return config.KUBERNETES_SERVICE_HOST === undefined ? 'storage-api' : 'kubernetes';
}
