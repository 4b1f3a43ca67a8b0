// Election on a coordination.k8s.io/v1 Lease, written small because
// @kubernetes/client-node has no leader-election helper (docs/decisions.md "Sources").
// Follows client-go's resourcelock semantics: read, then create or replace
// with the read resourceVersion (409 -> read again), acquireTime/renewTime as
// V1MicroTime (a plain Date serializes with milliseconds and the API server
// rejects it, kubernetes-client/javascript#828), leaseTransitions counted on
// every change of holder, and expiry judged from when this worker last saw
// the record change (its own clock), never from the record's timestamps, so
// clock skew between pods cannot cut a lease short.
import { V1MicroTime, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GcError } from '../errors.ts';
import { createLeaseElector } from './loop.ts';
import type { ElectionTiming, LeaderElector, LeaseBackend } from './types.ts';

/** The three CoordinationV1Api methods used (client-node 2.x object-parameter style). */
export interface LeaseApi {
  readNamespacedLease(param: { name: string; namespace: string }): Promise<V1Lease>;
  createNamespacedLease(param: { namespace: string; body: V1Lease }): Promise<V1Lease>;
  replaceNamespacedLease(param: {
    name: string;
    namespace: string;
    body: V1Lease;
  }): Promise<V1Lease>;
}

export interface KubernetesLeaseElectorOptions {
  api: LeaseApi;
  namespace: string;
  leaseName: string;
  identity: string;
  timing: ElectionTiming;
  logger: Logger;
  clock?: () => number;
}

/** HTTP status of a client-node ApiException (its `code`), if the error is one. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function wrap(err: unknown, what: string): GcError {
  const status = statusOf(err);
  return new GcError(
    'GC_ERR_LEASE_API',
    `${what}${status === undefined ? '' : `: HTTP ${status}`}`,
    {
      cause: err,
      ...(status === undefined ? {} : { status }),
    },
  );
}

/** client-node returns V1MicroTime fields as the wire string (it has no deserializer for them). */
function timeText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  return undefined;
}

function microTime(ms: number): V1MicroTime {
  return new V1MicroTime(ms);
}

export function createKubernetesLeaseBackend(
  options: Omit<KubernetesLeaseElectorOptions, 'logger' | 'timing'> & { leaseDurationMs: number },
): LeaseBackend {
  const { api, namespace, leaseName: name, identity } = options;
  const clock = options.clock ?? Date.now;
  const durationSeconds = Math.max(1, Math.ceil(options.leaseDurationMs / 1000));
  let observed: { key: string; at: number } | undefined;

  const observe = (spec: V1LeaseSpec): number => {
    const key = `${spec.holderIdentity ?? ''}\n${timeText(spec.renewTime) ?? ''}`;
    if (observed?.key !== key) observed = { key, at: clock() };
    return observed.at;
  };

  const body = (lease: V1Lease | undefined, spec: V1LeaseSpec): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace,
      ...(lease?.metadata?.resourceVersion === undefined
        ? {}
        : { resourceVersion: lease.metadata.resourceVersion }),
    },
    spec,
  });

  async function read(): Promise<V1Lease | undefined> {
    try {
      return await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw wrap(err, 'read Lease');
    }
  }

  return {
    async tryAcquireOrRenew(signal) {
      // Two rounds: a 409 means someone wrote in between; read again once.
      for (let round = 0; round < 2 && !signal.aborted; round++) {
        const lease = await read();
        const now = clock();
        if (lease === undefined) {
          const spec: V1LeaseSpec = {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          };
          try {
            await api.createNamespacedLease({ namespace, body: body(undefined, spec) });
          } catch (err) {
            if (statusOf(err) === 409) continue;
            throw wrap(err, 'create Lease');
          }
          observe(spec);
          return true;
        }
        const spec = lease.spec ?? {};
        const seenAt = observe(spec);
        const holder = spec.holderIdentity ?? '';
        const durationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
        if (holder !== '' && holder !== identity && seenAt + durationMs > now) return false;
        const acquired = timeText(spec.acquireTime);
        const next: V1LeaseSpec =
          holder === identity
            ? {
                ...spec,
                acquireTime: microTime(acquired === undefined ? now : Date.parse(acquired)),
                renewTime: microTime(now),
                leaseDurationSeconds: durationSeconds,
              }
            : {
                holderIdentity: identity,
                leaseDurationSeconds: durationSeconds,
                acquireTime: microTime(now),
                renewTime: microTime(now),
                leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
              };
        try {
          await api.replaceNamespacedLease({ name, namespace, body: body(lease, next) });
        } catch (err) {
          if (statusOf(err) === 409) continue;
          throw wrap(err, 'update Lease');
        }
        observe(next);
        return true;
      }
      return false;
    },
    async release() {
      for (let round = 0; round < 2; round++) {
        const lease = await read();
        if (lease?.spec?.holderIdentity !== identity) return;
        const now = clock();
        // As client-go: no holder, a one-second duration, transitions kept.
        const spec: V1LeaseSpec = {
          leaseDurationSeconds: 1,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: lease.spec.leaseTransitions ?? 0,
        };
        try {
          await api.replaceNamespacedLease({ name, namespace, body: body(lease, spec) });
          return;
        } catch (err) {
          if (statusOf(err) === 409) continue;
          throw wrap(err, 'release Lease');
        }
      }
    },
  };
}

export function createKubernetesLeaseElector(
  options: KubernetesLeaseElectorOptions,
): LeaderElector {
  return createLeaseElector({
    mode: 'kubernetes',
    identity: options.identity,
    backend: createKubernetesLeaseBackend({
      ...options,
      leaseDurationMs: options.timing.leaseDurationMs,
    }),
    timing: options.timing,
    logger: options.logger,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}
