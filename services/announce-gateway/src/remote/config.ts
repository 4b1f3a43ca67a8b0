// Settings of the remote storage client (STORAGE_DRIVER=remote): composed
// into the gateway's schema, names are the environment variables (docs/conventions.md
// "Config"). Defaults favour answering fast: a tracker client retries on its
// own, so a slow storage-api is better refused than waited on.
import { SECRET, Type } from '@shoal/config';

export const remoteStoreConfigSchema = Type.Object({
  STORAGE_API_URL: Type.Optional(
    Type.String({
      pattern: '^https?://[^\\s/?#]+/?$',
      description:
        "`http://host:port` of storage-api's API port; required by STORAGE_DRIVER=remote",
    }),
  ),
  STORAGE_API_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      ...SECRET,
      description:
        "storage-api's shared token (its STORAGE_API_TOKEN, at least 16 characters); required by STORAGE_DRIVER=remote",
    }),
  ),
  REMOTE_CONNECTIONS: Type.Integer({
    minimum: 1,
    maximum: 1024,
    default: 4,
    description:
      'Keep-alive connections to storage-api, and batches in flight at once. Fewer in flight means bigger batches; 16 measured slower than 2-8 under bench/remote-throughput.sh on 2 cores',
  }),
  REMOTE_BATCHING: Type.Boolean({
    default: true,
    description:
      'Coalesce the operations of one event-loop tick into one POST /v1/batch; false sends one per request',
  }),
  REMOTE_BATCH_MAX_OPS: Type.Integer({
    minimum: 1,
    maximum: 65_535,
    default: 256,
    description: 'A batch is sent as soon as it holds this many operations',
  }),
  REMOTE_QUEUE_MAX: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 20_000,
    description:
      'Operations waiting or in flight; past it an announce fails at once with STORE_ERR_UNAVAILABLE ("retry later")',
  }),
  REMOTE_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    maximum: 120_000,
    default: 2000,
    description: "One batch request's deadline; past it its operations fail with STORE_ERR_TIMEOUT",
  }),
  REMOTE_BREAKER_FAILURES: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 5,
    description:
      'Consecutive outages (no answer, 502/503/504, unavailable codes) that open the circuit breaker (docs/storage-api.md); while open every operation is refused at once with STORE_ERR_UNAVAILABLE',
  }),
  REMOTE_BREAKER_FAILURE_RATIO: Type.Number({
    minimum: 0.01,
    maximum: 1,
    default: 0.5,
    description:
      'Failed share of the last REMOTE_BREAKER_WINDOW requests that opens the breaker too; 1 disables the ratio',
  }),
  REMOTE_BREAKER_WINDOW: Type.Integer({
    minimum: 2,
    maximum: 100_000,
    default: 50,
    description: 'Requests over which REMOTE_BREAKER_FAILURE_RATIO is measured',
  }),
  REMOTE_BREAKER_OPEN_MS: Type.Integer({
    minimum: 1,
    maximum: 3_600_000,
    default: 2000,
    description:
      'How long an open breaker refuses before one half-open probe request is let through; its success closes it',
  }),
});

export interface RemoteStoreConfig {
  readonly STORAGE_API_URL?: string | undefined;
  readonly STORAGE_API_TOKEN?: string | undefined;
  readonly REMOTE_CONNECTIONS: number;
  readonly REMOTE_BATCHING: boolean;
  readonly REMOTE_BATCH_MAX_OPS: number;
  readonly REMOTE_QUEUE_MAX: number;
  readonly REMOTE_TIMEOUT_MS: number;
  readonly REMOTE_BREAKER_FAILURES: number;
  readonly REMOTE_BREAKER_FAILURE_RATIO: number;
  readonly REMOTE_BREAKER_WINDOW: number;
  readonly REMOTE_BREAKER_OPEN_MS: number;
}

export function checkRemoteStoreConfig(
  config: Readonly<Partial<RemoteStoreConfig>>,
): Array<{ key: string; message: string }> {
  const problems: Array<{ key: string; message: string }> = [];
  if (config.STORAGE_API_URL === undefined)
    problems.push({ key: 'STORAGE_API_URL', message: 'is required by the remote driver' });
  if (config.STORAGE_API_TOKEN === undefined)
    problems.push({ key: 'STORAGE_API_TOKEN', message: 'is required by the remote driver' });
  return problems;
}
