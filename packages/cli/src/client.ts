// The admin API of docs/policy.md through the one storage-api client
// (@shoal/storage-api-contract/client): bearer token, JSON in and out, error
// answers turned into ApiAnswerError, transport failures into coded
// CliErrors an operator can act on.
import { parseErrorBody } from '@shoal/storage-api-contract';
import {
  StorageApiClient,
  isStorageApiClientError,
  type StorageApiClientError,
} from '@shoal/storage-api-contract/client';
import { ApiAnswerError, CliError } from './errors.ts';

export interface AdminClientOptions {
  /** storage-api's base URL (a path prefix behind a proxy is kept). */
  url: string;
  token: string;
  timeoutMs: number;
}

export interface Answer<T> {
  status: number;
  body: T;
  /** Local clock (ms) when the request was sent and when the answer arrived. */
  sentAt: number;
  receivedAt: number;
}

function transportFailure(err: StorageApiClientError, base: string, timeoutMs: number): CliError {
  if (err.code === 'API_CLIENT_ERR_TIMEOUT') {
    return new CliError(
      'CLI_ERR_TIMEOUT',
      `storage-api at ${base} did not answer within ${timeoutMs / 1000} s (raise --timeout, or check the URL)`,
      { cause: err },
    );
  }
  const e = err.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const detail = typeof e?.message === 'string' ? e.message : err.message;
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

export class AdminClient {
  readonly #client: StorageApiClient;
  readonly #options: AdminClientOptions;

  constructor(options: AdminClientOptions) {
    this.#options = options;
    this.#client = new StorageApiClient(options);
  }

  async request<T>(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
  ): Promise<Answer<T>> {
    const sentAt = Date.now();
    let answer;
    try {
      answer = await this.#client.request(method, path, body === undefined ? {} : { json: body });
    } catch (err) {
      if (!isStorageApiClientError(err)) throw err;
      throw transportFailure(err, this.#options.url, this.#options.timeoutMs);
    }
    const receivedAt = Date.now();
    const pathname = path.split('?')[0] ?? path;
    const text = answer.body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CliError(
        'CLI_ERR_BAD_ANSWER',
        `${method} ${pathname} answered HTTP ${answer.status} with something that is not JSON: is ${this.#options.url} storage-api's API port?`,
      );
    }
    if (answer.status < 200 || answer.status >= 300) {
      const error = parseErrorBody(parsed);
      if (error !== undefined && typeof (parsed as { message?: unknown }).message === 'string') {
        throw new ApiAnswerError(answer.status, error.code, error.message, error.problems);
      }
      throw new CliError(
        'CLI_ERR_BAD_ANSWER',
        `${method} ${pathname} answered HTTP ${answer.status} without an error code`,
      );
    }
    return { status: answer.status, body: parsed as T, sentAt, receivedAt };
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
