// HTTP to storage-api: a keep-alive undici Pool, the batch body of
// @shoal/protocol's storage-rpc codec, and the one place its answers are
// turned into @shoal/storage's error codes (contract §1).
import { Pool } from 'undici';
import type { Logger } from 'pino';
import {
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_PATH,
  STORAGE_RPC_VERSION,
  STORAGE_RPC_VERSION_HEADER,
  decodeBatchResponse,
  encodeBatchRequest,
  isProtocolError,
  peekBatchVersion,
  type RpcOp,
  type RpcResult,
} from '@shoal/protocol';
import { StoreError, storeErrors, type StoreErrorCode } from '@shoal/storage';
import type { BatchTransport } from './batcher.ts';

export interface RpcTransportOptions {
  /** http://host:port of storage-api's API port. */
  url: string;
  token: string;
  connections: number;
  /** Connect, headers and body timeouts of the pool; requests also get an abort signal. */
  timeoutMs: number;
  logger: Logger;
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

/** The JSON error body of every non-200 storage-api answer (contract §1). */
interface ApiErrorBody {
  code?: unknown;
  message?: unknown;
  supported?: unknown;
}

export class RpcTransport implements BatchTransport<RpcOp, RpcResult> {
  readonly #pool: Pool;
  readonly #log: Logger;
  readonly #batchHeaders: Record<string, string>;
  readonly #jsonHeaders: Record<string, string>;
  /** Logs the first failure of an outage and the recovery, not every refused request. */
  #failing = false;

  constructor(options: RpcTransportOptions) {
    this.#log = options.logger;
    this.#pool = new Pool(new URL(options.url).origin, {
      connections: options.connections,
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    // Keep-alive errors on idle sockets (storage-api restarting) surface on the next request.
    this.#pool.on('connectionError', () => undefined);
    const authorization = `Bearer ${options.token}`;
    this.#batchHeaders = {
      authorization,
      'content-type': STORAGE_RPC_CONTENT_TYPE,
      [STORAGE_RPC_VERSION_HEADER]: String(STORAGE_RPC_VERSION),
    };
    this.#jsonHeaders = { authorization, accept: 'application/json' };
  }

  async send(ops: RpcOp[], signal: AbortSignal): Promise<RpcResult[]> {
    const body = encodeBatchRequest(ops);
    const { status, payload } = await this.#request(
      'POST',
      STORAGE_RPC_PATH,
      this.#batchHeaders,
      body,
      signal,
    );
    if (status !== 200) throw this.#refused(status, payload);
    try {
      const results = decodeBatchResponse(payload, ops);
      this.#recovered();
      return results;
    } catch (err) {
      if (isProtocolError(err) && err.code === 'PROTO_ERR_RPC_VERSION') {
        this.#versionMismatch(peekBatchVersion(payload));
      } else if (!this.#failing) {
        this.#failing = true;
        this.#log.error({ err }, 'storage-api answered a batch this gateway cannot decode');
      }
      throw new StoreError('STORE_ERR_UNAVAILABLE', 'undecodable storage-api answer', {
        cause: err,
      });
    }
  }

  /** GET a JSON resource of storage-api's API (stats). */
  async getJson(path: string, signal: AbortSignal): Promise<unknown> {
    const { status, payload } = await this.#request('GET', path, this.#jsonHeaders, null, signal);
    if (status !== 200) throw this.#refused(status, payload);
    try {
      return JSON.parse(payload.toString('utf8'));
    } catch (err) {
      throw new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api answered invalid JSON', {
        cause: err,
      });
    }
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #request(
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body: Buffer | null,
    signal: AbortSignal,
  ): Promise<{ status: number; payload: Buffer }> {
    try {
      const res = await this.#pool.request({ method, path, headers, body, signal });
      const payload = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, payload };
    } catch (err) {
      if (!this.#failing && !signal.aborted) {
        this.#failing = true;
        this.#log.warn({ err }, 'storage-api unreachable');
      }
      throw new RpcOutageError('STORE_ERR_UNAVAILABLE', 'storage-api unreachable', {
        cause: err,
      });
    }
  }

  #refused(status: number, payload: Buffer): StoreError {
    let body: ApiErrorBody = {};
    try {
      const parsed: unknown = JSON.parse(payload.toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null) body = parsed;
    } catch {
      // Not storage-api's JSON (a proxy's page): the status says enough.
    }
    const coded = typeof body.code === 'string';
    const code = coded ? (body.code as string) : `HTTP_${status}`;
    if (code === 'RPC_ERR_VERSION') {
      this.#versionMismatch(body.supported);
      return new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api speaks another batch version');
    }
    // A proxy's 5xx page (storage-api gone behind it) is an outage; storage-api's own 500 is not.
    if (OUTAGE_STATUSES.has(status) || OUTAGE_CODES.has(code) || (!coded && status >= 500)) {
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
