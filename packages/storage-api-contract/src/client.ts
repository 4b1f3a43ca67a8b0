// The one storage-api client (docs/storage-api.md "The client"): a keep-alive
// undici Pool, the bearer token, the paths and bodies of ./contract.ts. The
// gateway (batches, stats, policy), the gc-worker (gc, leases) and shoalctl
// (the admin API) all call storage-api through it; each turns its coded
// errors into its own catalog at its edge.
import { Pool } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { isProtocolError } from '@shoal/protocol/errors';
import {
  STORAGE_RPC_LIFETIME_HEADER,
  STORAGE_RPC_LOAD_HEADER,
  decodeBatchResponse,
  encodeBatchRequest,
  parseLoadReport,
  peekBatchVersion,
  type LoadReport,
  type RpcOp,
  type RpcResult,
} from '@shoal/protocol/storage-rpc';
import {
  ROUTES,
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_PATH,
  STORAGE_RPC_VERSION,
  STORAGE_RPC_VERSION_HEADER,
  parseErrorBody,
  paths,
  type ErrorBody,
  type FullScrapeResponse,
  type GcResponse,
  type LeaseResponse,
  type RateLimitsRequest,
  type RateLimitsResponse,
} from './contract.ts';
import { clientErrors, type ClientErrorCode } from './errors.ts';

export { clientErrors, type ClientErrorCode } from './errors.ts';

export interface StorageApiClientOptions {
  /** storage-api's API base URL; a path prefix behind a proxy is kept. */
  url: string;
  token: string;
  /** Connect, headers and body timeouts of the pool, and (see `deadline`) each call's. */
  timeoutMs: number;
  /** Keep-alive connections, and requests in flight at once; default 1. */
  connections?: number;
  /**
   * Abort each call `timeoutMs` after it starts (default true). The gateway's
   * batcher gives every batch its own deadline and turns this off.
   */
  deadline?: boolean;
  /** Sent on every request (the gc-worker's x-shoal-client). */
  headers?: Record<string, string>;
}

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A batch's results and the load storage-api reported with them. */
export interface BatchAnswer {
  results: RpcResult[];
  load: LoadReport | undefined;
}

export class StorageApiClientError extends Error {
  readonly code: ClientErrorCode;
  /** The answer's status (REFUSED, BAD_ANSWER). */
  readonly status: number | undefined;
  /** storage-api's error body when it sent one (REFUSED). */
  readonly body: ErrorBody | undefined;
  constructor(
    code: ClientErrorCode,
    detail: string,
    options?: { cause?: unknown; status?: number; body?: ErrorBody },
  ) {
    super(`${clientErrors[code].message}: ${detail}`, options);
    this.name = 'StorageApiClientError';
    this.code = code;
    this.status = options?.status;
    this.body = options?.body;
  }
}

export function isStorageApiClientError(err: unknown): err is StorageApiClientError {
  return err instanceof StorageApiClientError;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export class StorageApiClient {
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #deadline: boolean;
  readonly #batchHeaders: Record<string, string>;
  readonly #jsonHeaders: Record<string, string>;
  readonly #sendJson: Record<string, string>;

  constructor(options: StorageApiClientOptions) {
    const url = new URL(options.url);
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs;
    this.#deadline = options.deadline ?? true;
    this.#pool = new Pool(url.origin, {
      connections: options.connections ?? 1,
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    // Keep-alive errors on idle sockets (storage-api restarting) surface on the next request.
    this.#pool.on('connectionError', () => undefined);
    const common = { ...options.headers, authorization: `Bearer ${options.token}` };
    this.#batchHeaders = {
      ...common,
      'content-type': STORAGE_RPC_CONTENT_TYPE,
      [STORAGE_RPC_VERSION_HEADER]: String(STORAGE_RPC_VERSION),
    };
    this.#jsonHeaders = { ...common, accept: 'application/json' };
    this.#sendJson = { ...this.#jsonHeaders, 'content-type': 'application/json' };
  }

  /**
   * One request, any status. Rejects only when no answer arrived:
   * API_CLIENT_ERR_TIMEOUT or API_CLIENT_ERR_UNREACHABLE, the cause attached.
   */
  async request(
    method: Method,
    path: string,
    init: {
      body?: Buffer | string;
      /** Sent as a JSON body (instead of `body`). */
      json?: unknown;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    } = {},
  ): Promise<RawAnswer> {
    const deadline = this.#deadline ? AbortSignal.timeout(this.#timeoutMs) : undefined;
    const signal =
      deadline === undefined
        ? init.signal
        : init.signal === undefined
          ? deadline
          : AbortSignal.any([init.signal, deadline]);
    try {
      const res = await this.#pool.request({
        method,
        path: `${this.#prefix}${path}`,
        headers: init.headers ?? (init.json === undefined ? this.#jsonHeaders : this.#sendJson),
        body: init.json === undefined ? (init.body ?? null) : JSON.stringify(init.json),
        signal: signal ?? null,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const timedOut =
        deadline?.aborted === true || (typeof code === 'string' && TIMEOUT_CODES.has(code));
      throw new StorageApiClientError(
        timedOut ? 'API_CLIENT_ERR_TIMEOUT' : 'API_CLIENT_ERR_UNREACHABLE',
        `${method} ${path}`,
        { cause: err },
      );
    }
  }

  /**
   * A JSON call: `body` sent as JSON, the 2xx answer parsed. Any other status
   * is API_CLIENT_ERR_REFUSED (with storage-api's error body when it sent
   * one), an answer that is not JSON API_CLIENT_ERR_BAD_ANSWER.
   */
  async json(
    method: Method,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: unknown }> {
    const answer = await this.request(method, path, {
      ...(body === undefined ? {} : { json: body }),
      ...(signal === undefined ? {} : { signal }),
    });
    let parsed: unknown;
    try {
      parsed = answer.body.length === 0 ? undefined : JSON.parse(answer.body.toString('utf8'));
    } catch (err) {
      if (answer.status >= 200 && answer.status < 300)
        throw new StorageApiClientError(
          'API_CLIENT_ERR_BAD_ANSWER',
          `${method} ${path}: HTTP ${answer.status}, body is not JSON`,
          { cause: err, status: answer.status },
        );
      throw refused(method, path, answer.status, undefined);
    }
    if (answer.status < 200 || answer.status >= 300)
      throw refused(method, path, answer.status, parseErrorBody(parsed));
    return { status: answer.status, body: parsed };
  }

  /**
   * POST /v1/batch. A non-200 answer is API_CLIENT_ERR_REFUSED; an answer the
   * codec refuses is API_CLIENT_ERR_BAD_ANSWER with the codec's error as cause.
   */
  async batch(ops: RpcOp[], signal?: AbortSignal): Promise<RpcResult[]> {
    return (await this.batchWithLoad(ops, signal === undefined ? {} : { signal })).results;
  }

  /**
   * POST /v1/batch carrying the peers' promised lifetime, answering with
   * storage-api's load report too (docs/load.md); `load` is undefined from a
   * storage-api that sends none (an older release).
   */
  async batchWithLoad(
    ops: RpcOp[],
    options: { signal?: AbortSignal; lifetimeSeconds?: number },
  ): Promise<BatchAnswer> {
    const { signal, lifetimeSeconds } = options;
    const answer = await this.request('POST', STORAGE_RPC_PATH, {
      body: encodeBatchRequest(ops),
      headers:
        lifetimeSeconds === undefined
          ? this.#batchHeaders
          : { ...this.#batchHeaders, [STORAGE_RPC_LIFETIME_HEADER]: String(lifetimeSeconds) },
      ...(signal === undefined ? {} : { signal }),
    });
    if (answer.status !== 200)
      throw refused('POST', STORAGE_RPC_PATH, answer.status, errorBodyOf(answer.body));
    try {
      return {
        results: decodeBatchResponse(answer.body, ops),
        load: parseLoadReport(answer.headers[STORAGE_RPC_LOAD_HEADER]),
      };
    } catch (err) {
      // An answer of another batch version says which one storage-api speaks.
      const version = isProtocolError(err) && err.code === 'PROTO_ERR_RPC_VERSION';
      const theirs = peekBatchVersion(answer.body);
      throw new StorageApiClientError('API_CLIENT_ERR_BAD_ANSWER', `POST ${STORAGE_RPC_PATH}`, {
        cause: err,
        status: answer.status,
        ...(version && theirs !== undefined
          ? { body: { code: 'RPC_ERR_VERSION', message: err.message, supported: [theirs] } }
          : {}),
      });
    }
  }

  /** GET /v1/stats, unchecked (the caller knows the shape it needs). */
  async stats(signal?: AbortSignal): Promise<unknown> {
    return (await this.json('GET', ROUTES.stats, undefined, signal)).body;
  }

  /** GET /v1/full-scrape, its shape checked. */
  async fullScrape(limit: number, signal?: AbortSignal): Promise<FullScrapeResponse> {
    const path = paths.fullScrape(limit);
    const { body } = await this.json('GET', path, undefined, signal);
    const b = body as Partial<Record<keyof FullScrapeResponse, unknown>> | undefined;
    const entries: unknown[] = Array.isArray(b?.swarms) ? b.swarms : [];
    const wellFormed =
      typeof b?.truncated === 'boolean' &&
      Array.isArray(b.swarms) &&
      entries.every(
        (e) =>
          Array.isArray(e) &&
          e.length === 4 &&
          typeof e[0] === 'string' &&
          /^[0-9a-f]{40}$/.test(e[0]) &&
          isCount(e[1]) &&
          isCount(e[2]) &&
          isCount(e[3]),
      );
    if (!wellFormed)
      throw badAnswer(
        'GET',
        path,
        'want { swarms: [[hex, seeders, leechers, downloaded]], truncated }',
      );
    return body as FullScrapeResponse;
  }

  /**
   * GET /v1/policy with If-None-Match: undefined when the revision is
   * unchanged (304), the unchecked snapshot otherwise.
   */
  async policy(revision: string | undefined, signal?: AbortSignal): Promise<unknown> {
    const answer = await this.request('GET', ROUTES.policy, {
      headers:
        revision === undefined
          ? this.#jsonHeaders
          : { ...this.#jsonHeaders, 'if-none-match': `"${revision}"` },
      ...(signal === undefined ? {} : { signal }),
    });
    if (answer.status === 304) return undefined;
    if (answer.status !== 200)
      throw refused('GET', ROUTES.policy, answer.status, errorBodyOf(answer.body));
    try {
      return JSON.parse(answer.body.toString('utf8'));
    } catch (err) {
      throw new StorageApiClientError('API_CLIENT_ERR_BAD_ANSWER', `GET ${ROUTES.policy}`, {
        cause: err,
        status: answer.status,
      });
    }
  }

  /** POST /v1/links: a link a gateway learned; true when it is new. Refused (409) when it conflicts. */
  async learnLink(first: string, second: string, signal?: AbortSignal): Promise<boolean> {
    const { body } = await this.json('POST', ROUTES.links, { first, second }, signal);
    return (body as { added?: unknown } | undefined)?.added === true;
  }

  /** POST /v1/bans: a ban a gateway applied (key from banKeyOf, until ms); true when new. */
  async ban(key: string, until: number, reason: string, signal?: AbortSignal): Promise<boolean> {
    const { body } = await this.json('POST', ROUTES.bans, { key, until, reason }, signal);
    return (body as { added?: unknown } | undefined)?.added === true;
  }

  /** POST /v1/rate-limits: adds a gateway's admitted counts, answers the cluster-wide ones, shape checked. */
  async rateLimits(request: RateLimitsRequest, signal?: AbortSignal): Promise<RateLimitsResponse> {
    const { body } = await this.json('POST', ROUTES.rateLimits, request, signal);
    const b = body as Partial<Record<keyof RateLimitsResponse, unknown>> | undefined;
    const counts = (v: unknown): v is number[] =>
      Array.isArray(v) && v.length === request.keys.length && v.every(isCount);
    if (!counts(b?.current) || !counts(b.previous))
      throw badAnswer('POST', ROUTES.rateLimits, 'want { current: number[], previous: number[] }');
    return { current: b.current, previous: b.previous };
  }

  /** POST /v1/gc. */
  async collectGarbage(signal?: AbortSignal): Promise<GcResponse> {
    const { body } = await this.json('POST', ROUTES.gc, {}, signal);
    const b = body as Partial<Record<keyof GcResponse, unknown>> | undefined;
    if (!isCount(b?.peersRemoved) || !isCount(b.swarmsRemoved))
      throw badAnswer('POST', ROUTES.gc, 'want { peersRemoved, swarmsRemoved }');
    return {
      peersRemoved: b.peersRemoved,
      swarmsRemoved: b.swarmsRemoved,
      durationMs: typeof b.durationMs === 'number' ? b.durationMs : 0,
    };
  }

  /** POST /v1/leases/:name: takes or renews the lease for `holder`. */
  async acquireLease(
    name: string,
    holder: string,
    ttlMs: number,
    signal?: AbortSignal,
  ): Promise<LeaseResponse> {
    const { body } = await this.json('POST', paths.lease(name), { holder, ttlMs }, signal);
    const b = body as Partial<Record<keyof LeaseResponse, unknown>> | undefined;
    const heldBy = b?.holder;
    const expiresAt = b?.expiresAt;
    if (
      typeof b?.held !== 'boolean' ||
      (heldBy !== null && typeof heldBy !== 'string') ||
      (expiresAt !== null && typeof expiresAt !== 'number')
    )
      throw badAnswer('POST', '/v1/leases', 'want { held, holder, expiresAt }');
    return { held: b.held, holder: heldBy, expiresAt };
  }

  /** DELETE /v1/leases/:name: whether `holder` held it. */
  async releaseLease(name: string, holder: string, signal?: AbortSignal): Promise<boolean> {
    const { body } = await this.json('DELETE', paths.lease(name), { holder }, signal);
    const released = (body as { released?: unknown } | undefined)?.released;
    if (typeof released !== 'boolean') throw badAnswer('DELETE', '/v1/leases', 'want { released }');
    return released;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function errorBodyOf(payload: Buffer): ErrorBody | undefined {
  try {
    return parseErrorBody(JSON.parse(payload.toString('utf8')));
  } catch {
    // Not storage-api's JSON (a proxy's page): the status says enough.
    return undefined;
  }
}

function refused(
  method: string,
  path: string,
  status: number,
  body: ErrorBody | undefined,
): StorageApiClientError {
  return new StorageApiClientError(
    'API_CLIENT_ERR_REFUSED',
    `${method} ${path}: HTTP ${status}${body === undefined ? '' : ` ${body.code}`}`,
    { status, ...(body === undefined ? {} : { body }) },
  );
}

function badAnswer(method: string, path: string, detail: string): StorageApiClientError {
  return new StorageApiClientError('API_CLIENT_ERR_BAD_ANSWER', `${method} ${path}: ${detail}`);
}
