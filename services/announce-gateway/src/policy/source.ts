// Where a gateway reads its approval lists and passkeys (docs/policy.md
// "Where the data lives"): storage-api's GET /v1/policy for the remote
// driver, the store's own KV for the embedded ones.
import { createPolicyRepository, type PolicySnapshot } from '@shoal/policy';
import { isDataStore, isServiceClient, type DataStore, type PeerStore } from '@shoal/storage';
import { ROUTES } from '@shoal/storage-api-contract';
import { StorageApiClient } from '@shoal/storage-api-contract/client';

export interface PolicySource {
  /**
   * The snapshot when it differs from `revision` (always on the first load,
   * `revision` undefined), or undefined when it is unchanged. Rejects when the
   * data cannot be read; the cache then keeps what it has.
   */
  load(revision: string | undefined, signal: AbortSignal): Promise<PolicySnapshot | undefined>;
  /** Stores a hybrid link the gateway learned (docs/policy.md "Hybrid torrents"); true when new. */
  learnLink?(first: string, second: string): Promise<boolean>;
  /** Stores a ban this gateway applied (docs/policy.md "Abuse control"); true when new. */
  ban?(key: string, until: number, reason: 'bad_connection_id' | 'malformed'): Promise<boolean>;
  close(): Promise<void>;
}

/** Reads the revision first (one KV get), and the lists only when it moved. */
export function createEmbeddedPolicySource(data: DataStore): PolicySource {
  const repository = createPolicyRepository(data);
  return {
    async load(revision) {
      if (revision !== undefined && (await repository.revision()) === revision) return undefined;
      return repository.snapshot();
    },
    learnLink: (first, second) => repository.addLink({ first, second }, { learned: true }),
    ban: (key, until, reason) => repository.addBan({ key, until, reason }),
    // The store belongs to the gateway's storage handle, which closes it.
    close: () => Promise.resolve(),
  };
}

export interface RemotePolicySourceOptions {
  /** http://host:port of storage-api's API port. */
  url: string;
  /** The gateway's STORAGE_API_TOKEN. */
  token: string;
  timeoutMs: number;
}

/**
 * GET /v1/policy with If-None-Match: one small 304 per refresh while nothing
 * changed, whatever the size of the lists. One keep-alive connection of its
 * own, apart from the announce batches.
 */
export function createRemotePolicySource(options: RemotePolicySourceOptions): PolicySource {
  const client = new StorageApiClient({ ...options, connections: 1 });
  return {
    async load(revision, signal) {
      const body = await client.policy(revision, signal);
      return body === undefined ? undefined : toSnapshot(body);
    },
    learnLink: (first, second) => client.learnLink(first, second),
    ban: (key, until, reason) => client.ban(key, until, reason),
    close: () => client.close(),
  };
}

/** Checks the shape a snapshot must have; compilePolicy skips bad entries inside it. */
export function toSnapshot(body: unknown): PolicySnapshot {
  const b = body as Partial<PolicySnapshot> | null;
  const ok =
    typeof b === 'object' &&
    b !== null &&
    typeof b.revision === 'string' &&
    isPair(b.torrents) &&
    isPair(b.clients) &&
    Array.isArray(b.passkeys) &&
    b.passkeys.every((p) => Array.isArray(p)) &&
    (b.links === undefined || (Array.isArray(b.links) && b.links.every((l) => Array.isArray(l)))) &&
    (b.bans === undefined || (Array.isArray(b.bans) && b.bans.every((l) => Array.isArray(l))));
  if (!ok) throw new Error(`GET ${ROUTES.policy} answered something that is not a policy snapshot`);
  return b as PolicySnapshot;
}

function isPair(v: unknown): boolean {
  const p = v as { allow?: unknown; deny?: unknown } | null | undefined;
  return typeof p === 'object' && p !== null && Array.isArray(p.allow) && Array.isArray(p.deny);
}

/**
 * The source for this gateway's store: the service's GET /v1/policy for a
 * storage service's client, the store's own KV otherwise; undefined when the
 * store holds no KV (a custom test store).
 */
export function policySourceFor(
  storage: PeerStore,
  options: { minTimeoutMs: number },
): PolicySource | undefined {
  if (isServiceClient(storage)) {
    const { url, token, timeoutMs } = storage.service;
    return createRemotePolicySource({
      url,
      token,
      timeoutMs: Math.max(timeoutMs, options.minTimeoutMs),
    });
  }
  return isDataStore(storage) ? createEmbeddedPolicySource(storage) : undefined;
}
