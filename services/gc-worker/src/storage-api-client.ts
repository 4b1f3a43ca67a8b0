// The gc-worker's calls to storage-api (contract-wave2 §2): POST /v1/gc and
// the lease routes, token-authenticated JSON. One call a few seconds apart,
// so Node's fetch (undici underneath, keep-alive) is enough.
import { GcError } from './errors.ts';

export interface StorageApiClientOptions {
  /** http://host:port of storage-api's API port. */
  url: string;
  token: string;
  timeoutMs: number;
  /** Sent as x-shoal-client so storage-api's logs tell which worker collected. */
  clientId?: string;
}

export interface GcRunResult {
  peersRemoved: number;
  swarmsRemoved: number;
}

export interface LeaseAnswer {
  held: boolean;
  holder: string | null;
  expiresAt: number | null;
}

export interface StorageApiClient {
  collectGarbage(signal?: AbortSignal): Promise<GcRunResult>;
  acquireLease(
    name: string,
    holder: string,
    ttlMs: number,
    signal?: AbortSignal,
  ): Promise<LeaseAnswer>;
  releaseLease(name: string, holder: string, signal?: AbortSignal): Promise<boolean>;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

export function createStorageApiClient(options: StorageApiClientOptions): StorageApiClient {
  const base = options.url.replace(/\/+$/, '');
  const headers: Record<string, string> = {
    authorization: `Bearer ${options.token}`,
    'content-type': 'application/json',
    ...(options.clientId === undefined ? {} : { 'x-shoal-client': options.clientId }),
  };

  async function call(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>> {
    const timeout = AbortSignal.timeout(options.timeoutMs);
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers,
        body: JSON.stringify(body),
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (err) {
      if (timeout.aborted) throw new GcError('GC_ERR_TIMEOUT', `${method} ${path}`, { cause: err });
      throw new GcError('GC_ERR_UNREACHABLE', `${method} ${path}`, { cause: err });
    }
    let json: unknown;
    try {
      json = await res.json();
    } catch (err) {
      if (timeout.aborted) throw new GcError('GC_ERR_TIMEOUT', `${method} ${path}`, { cause: err });
      throw new GcError(
        'GC_ERR_BAD_RESPONSE',
        `${method} ${path}: HTTP ${res.status}, body is not JSON`,
        { cause: err, status: res.status },
      );
    }
    const obj = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
    if (!res.ok) {
      const remoteCode = typeof obj.code === 'string' ? obj.code : undefined;
      throw new GcError(
        'GC_ERR_HTTP',
        `${method} ${path}: HTTP ${res.status}${remoteCode === undefined ? '' : ` ${remoteCode}`}`,
        {
          status: res.status,
          ...(remoteCode === undefined ? {} : { remoteCode }),
        },
      );
    }
    return obj;
  }

  return {
    async collectGarbage(signal) {
      const body = await call('POST', '/v1/gc', {}, signal);
      if (!isCount(body.peersRemoved) || !isCount(body.swarmsRemoved)) {
        throw new GcError(
          'GC_ERR_BAD_RESPONSE',
          'POST /v1/gc: want { peersRemoved, swarmsRemoved }',
        );
      }
      return { peersRemoved: body.peersRemoved, swarmsRemoved: body.swarmsRemoved };
    },
    async acquireLease(name, holder, ttlMs, signal) {
      const body = await call(
        'POST',
        `/v1/leases/${encodeURIComponent(name)}`,
        { holder, ttlMs },
        signal,
      );
      const heldBy = body.holder;
      const expiresAt = body.expiresAt;
      if (
        typeof body.held !== 'boolean' ||
        (heldBy !== null && typeof heldBy !== 'string') ||
        (expiresAt !== null && typeof expiresAt !== 'number')
      ) {
        throw new GcError(
          'GC_ERR_BAD_RESPONSE',
          'POST /v1/leases: want { held, holder, expiresAt }',
        );
      }
      return { held: body.held, holder: heldBy, expiresAt };
    },
    async releaseLease(name, holder, signal) {
      const body = await call(
        'DELETE',
        `/v1/leases/${encodeURIComponent(name)}`,
        { holder },
        signal,
      );
      if (typeof body.released !== 'boolean')
        throw new GcError('GC_ERR_BAD_RESPONSE', 'DELETE /v1/leases: want { released }');
      return body.released;
    },
  };
}
