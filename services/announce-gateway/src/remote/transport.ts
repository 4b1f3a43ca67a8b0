// The gateway's batches and stats through the one storage-api client
// (@shoal/storage-api-contract/client), and the one place its answers are
// turned into @shoal/storage's error codes (docs/storage-api.md "Contract and client").
import type { Logger } from 'pino';
import {
  STORAGE_RPC_VERSION,
  isProtocolError,
  type LoadReport,
  type RpcOp,
  type RpcResult,
} from '@shoal/protocol';
import { StoreError, storeErrors, type StoreErrorCode } from '@shoal/storage';
import type {
  ErrorBody,
  FullScrapeResponse,
  RateLimitsRequest,
  RateLimitsResponse,
} from '@shoal/storage-api-contract';
import { StorageApiClient, isStorageApiClientError } from '@shoal/storage-api-contract/client';
import type { BatchTransport } from './batcher.ts';

export interface RpcTransportOptions {
  /** http://host:port of storage-api's API port. */
  url: string;
  token: string;
  connections: number;
  /** Connect, headers and body timeouts of the pool; requests also get an abort signal. */
  timeoutMs: number;
  logger: Logger;
  /** Told of every batch answer's load report; undefined when storage-api sent none (docs/load.md). */
  onLoad?: (report: LoadReport | undefined) => void;
}

/**
 * A batch request storage-api did not answer (connection refused or reset,
 * no answer in time) or answered "unavailable" (502/503/504, a store outage
 * code, shutting down). The circuit breaker counts these and nothing else: a
 * request storage-api answered otherwise (a 4xx, a 500 about that request,
 * per-op errors) says nothing about its availability, and counting it would
 * let one client's unusual request refuse every announce of the gateway
 * (docs/storage-api.md "What the gateway's circuit breaker counts").
 */
export class RpcOutageError extends StoreError {
  constructor(code: StoreErrorCode, detail: string, options?: { cause?: unknown }) {
    super(code, detail, options);
    this.name = 'RpcOutageError';
  }
}

export function isOutage(err: unknown): boolean {
  return err instanceof RpcOutageError;
}

/** Codes with which storage-api says it (or its backend) cannot serve anything now. */
const OUTAGE_CODES: ReadonlySet<string> = new Set([
  'STORE_ERR_UNAVAILABLE',
  'STORE_ERR_TIMEOUT',
  'RPC_ERR_SHUTTING_DOWN',
]);
const OUTAGE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

export class RpcTransport implements BatchTransport<RpcOp, RpcResult> {
  readonly #client: StorageApiClient;
  readonly #log: Logger;
  readonly #onLoad: ((report: LoadReport | undefined) => void) | undefined;
  /** Logs the first failure of an outage and the recovery, not every refused request. */
  #failing = false;

  constructor(options: RpcTransportOptions) {
    this.#log = options.logger;
    this.#onLoad = options.onLoad;
    // The batcher gives every batch its deadline (the signal of send()).
    this.#client = new StorageApiClient({
      url: options.url,
      token: options.token,
      connections: options.connections,
      timeoutMs: options.timeoutMs,
      deadline: false,
    });
  }

  async send(ops: RpcOp[], signal: AbortSignal): Promise<RpcResult[]> {
    try {
      // docs/load.md: the batch's longest promise, so no peer of it lives shorter than its own.
      let lifetimeSeconds: number | undefined;
      for (const op of ops)
        if (op.op === 'announce' && op.lifetimeSeconds !== undefined)
          lifetimeSeconds = Math.max(lifetimeSeconds ?? 0, op.lifetimeSeconds);
      const answer = await this.#client.batchWithLoad(ops, {
        signal,
        ...(lifetimeSeconds === undefined ? {} : { lifetimeSeconds }),
      });
      this.#recovered();
      this.#onLoad?.(answer.load);
      return answer.results;
    } catch (err) {
      throw this.#storeError(err, signal);
    }
  }

  /** GET /v1/stats, unchecked. */
  async stats(signal: AbortSignal): Promise<unknown> {
    try {
      return await this.#client.stats(signal);
    } catch (err) {
      throw this.#storeError(err, signal);
    }
  }

  /** GET /v1/full-scrape, its shape checked by the client. */
  async fullScrape(limit: number, signal: AbortSignal): Promise<FullScrapeResponse> {
    try {
      return await this.#client.fullScrape(limit, signal);
    } catch (err) {
      throw this.#storeError(err, signal);
    }
  }

  /**
   * POST /v1/rate-limits (docs/policy.md "Shared rate limits"). Its failures
   * stay out of the batches' outage log (the shared limit logs its own, once
   * per outage): a storage-api whose store keeps no counters answers 404 to
   * every sync while its batches succeed.
   */
  async rateLimits(request: RateLimitsRequest, signal: AbortSignal): Promise<RateLimitsResponse> {
    try {
      return await this.#client.rateLimits(request, signal);
    } catch (err) {
      if (!isStorageApiClientError(err)) throw err;
      throw new StoreError('STORE_ERR_UNAVAILABLE', `shared rate limit sync: ${err.message}`, {
        cause: err,
      });
    }
  }

  close(): Promise<void> {
    return this.#client.close();
  }

  /** The one place the client's errors become @shoal/storage's codes. */
  #storeError(err: unknown, signal: AbortSignal): StoreError {
    if (!isStorageApiClientError(err)) throw err;
    switch (err.code) {
      case 'API_CLIENT_ERR_UNREACHABLE':
      case 'API_CLIENT_ERR_TIMEOUT':
        if (!this.#failing && !signal.aborted) {
          this.#failing = true;
          this.#log.warn({ err: err.cause }, 'storage-api unreachable');
        }
        return new RpcOutageError('STORE_ERR_UNAVAILABLE', 'storage-api unreachable', {
          cause: err.cause,
        });
      case 'API_CLIENT_ERR_REFUSED':
        return this.#refused(err.status ?? 0, err.body);
      case 'API_CLIENT_ERR_BAD_ANSWER': {
        const cause = err.cause ?? err;
        if (isProtocolError(cause) && cause.code === 'PROTO_ERR_RPC_VERSION') {
          this.#versionMismatch(err.body?.supported?.[0]);
        } else if (!this.#failing) {
          this.#failing = true;
          this.#log.error(
            { err: cause },
            'storage-api answered a batch this gateway cannot decode',
          );
        }
        return new StoreError('STORE_ERR_UNAVAILABLE', 'undecodable storage-api answer', {
          cause,
        });
      }
    }
  }

  #refused(status: number, body: ErrorBody | undefined): StoreError {
    const code = body === undefined ? `HTTP_${status}` : body.code;
    if (code === 'RPC_ERR_VERSION') {
      this.#versionMismatch(body?.supported);
      return new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api speaks another batch version');
    }
    // A proxy's 5xx page (storage-api gone behind it) is an outage; storage-api's own 500 is not.
    if (
      OUTAGE_STATUSES.has(status) ||
      OUTAGE_CODES.has(code) ||
      (body === undefined && status >= 500)
    ) {
      this.#failed(`storage-api answered ${status} ${code}`);
      return new RpcOutageError(
        isStoreErrorCode(code) ? code : 'STORE_ERR_UNAVAILABLE',
        `storage-api answered ${status} ${code}`,
      );
    }
    // storage-api passes a store error on as one of our own codes: keep it.
    if (isStoreErrorCode(code)) {
      this.#failed(`storage-api answered ${status} ${code}`);
      return new StoreError(code, `storage-api answered ${status}`);
    }
    // 401 (wrong token), 400/413 (a gateway/storage-api mismatch), 500 (a storage-api
    // bug on this request): ours to fix, the client's to retry.
    this.#failed(`storage-api refused the request: ${status} ${code}`, 'error');
    return new StoreError('STORE_ERR_UNAVAILABLE', `storage-api answered ${status} ${code}`);
  }

  #versionMismatch(theirs: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#log.error(
      { gatewayVersion: STORAGE_RPC_VERSION, storageApiVersions: theirs },
      `storage-api does not speak this gateway's batch protocol version ${STORAGE_RPC_VERSION} (it speaks ${JSON.stringify(theirs)}): upgrade one of them; announces answer "retry later" meanwhile`,
    );
  }

  #failed(message: string, level: 'warn' | 'error' = 'warn'): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#log[level](message);
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#log.info('storage-api answering again');
  }
}

export function isStoreErrorCode(code: string): code is StoreErrorCode {
  return Object.hasOwn(storeErrors, code);
}
