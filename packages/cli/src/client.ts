// The admin API of docs/policy.md over fetch: bearer token, JSON in and out,
// error answers turned into ApiAnswerError, transport failures into coded
// CliErrors an operator can act on.
import { ApiAnswerError, CliError, type ApiProblem } from './errors.ts';

export type Fetch = typeof globalThis.fetch;

export interface AdminClientOptions {
  /** storage-api's base URL (a path prefix behind a proxy is kept). */
  url: string;
  token: string;
  timeoutMs: number;
  fetch: Fetch;
}

export interface Answer<T> {
  status: number;
  body: T;
  /** Local clock (ms) when the request was sent and when the answer arrived. */
  sentAt: number;
  receivedAt: number;
}

function transportFailure(err: unknown, base: string, timeoutMs: number): CliError {
  const e = err as { name?: unknown; cause?: { code?: unknown; message?: unknown } } | undefined;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new CliError(
      'CLI_ERR_TIMEOUT',
      `storage-api at ${base} did not answer within ${timeoutMs / 1000} s (raise --timeout, or check the URL)`,
      { cause: err },
    );
  }
  const code = typeof e?.cause?.code === 'string' ? e.cause.code : '';
  const detail =
    typeof e?.cause?.message === 'string'
      ? e.cause.message
      : err instanceof Error
        ? err.message
        : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return new CliError(
        'CLI_ERR_CONNECT',
        `cannot reach storage-api at ${base}: connection refused (nothing listens there: is storage-api running, and are --url / SHOAL_URL right?)`,
        { cause: err },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new CliError(
        'CLI_ERR_CONNECT',
        `cannot reach storage-api at ${base}: the host name does not resolve (${code})`,
        { cause: err },
      );
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return new CliError(
        'CLI_ERR_CONNECT',
        `storage-api at ${base} closed the connection before answering (a TLS/plain-HTTP mismatch, or a proxy in between?)`,
        { cause: err },
      );
    default:
      if (
        /certificate|self.signed|SSL|TLS/i.test(detail) ||
        code.startsWith('ERR_TLS') ||
        code.includes('CERT')
      ) {
        return new CliError(
          'CLI_ERR_CONNECT',
          `cannot reach storage-api at ${base}: TLS failed (${detail})`,
          { cause: err },
        );
      }
      return new CliError(
        'CLI_ERR_CONNECT',
        `cannot reach storage-api at ${base}: ${detail}${code === '' ? '' : ` (${code})`}`,
        { cause: err },
      );
  }
}

function problemsOf(value: unknown): ApiProblem[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((p: unknown) => {
    const r = p as Record<string, unknown> | null;
    return r !== null &&
      typeof r === 'object' &&
      typeof r.index === 'number' &&
      typeof r.code === 'string'
      ? [{ index: r.index, code: r.code, value: typeof r.value === 'string' ? r.value : '' }]
      : [];
  });
}

export class AdminClient {
  readonly #base: string;
  readonly #options: AdminClientOptions;

  constructor(options: AdminClientOptions) {
    this.#options = options;
    this.#base = options.url.endsWith('/') ? options.url : `${options.url}/`;
  }

  async request<T>(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
  ): Promise<Answer<T>> {
    const url = new URL(path.replace(/^\//, ''), this.#base);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#options.token}`,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const sentAt = Date.now();
    let response: Response;
    let text: string;
    try {
      response = await this.#options.fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      throw transportFailure(err, this.#options.url, this.#options.timeoutMs);
    }
    const receivedAt = Date.now();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CliError(
        'CLI_ERR_BAD_ANSWER',
        `${method} ${url.pathname} answered HTTP ${response.status} with something that is not JSON: is ${this.#options.url} storage-api's API port?`,
      );
    }
    if (!response.ok) {
      const r = (parsed ?? {}) as Record<string, unknown>;
      if (typeof r.code === 'string' && typeof r.message === 'string') {
        throw new ApiAnswerError(response.status, r.code, r.message, problemsOf(r.problems));
      }
      throw new CliError(
        'CLI_ERR_BAD_ANSWER',
        `${method} ${url.pathname} answered HTTP ${response.status} without an error code`,
      );
    }
    return { status: response.status, body: parsed as T, sentAt, receivedAt };
  }
}
