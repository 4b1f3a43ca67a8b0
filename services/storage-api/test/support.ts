// Test helpers for storage-api's own tests (docs/testing.md "Where test code
// lives").
import { expect } from 'vitest';
import {
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_VERSION,
  STORAGE_RPC_VERSION_HEADER,
  decodeBatchResponse,
  encodeBatchRequest,
  type RpcOp,
  type RpcResult,
} from '@shoal/protocol/storage-rpc';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';
import type { StorageApi } from '../src/app.ts';
import { loadStorageApiConfig, type StorageApiConfig } from '../src/config.ts';

/** storage-api's config as a test builds it in-process: loopback, port 0, the gateways' `token`, then `env`. */
export function testConfig(
  token: string,
  env: Readonly<Record<string, string>> = {},
): StorageApiConfig {
  return loadStorageApiConfig({
    env: { ...LOOPBACK_ENV, STORAGE_API_TOKEN: token, ...env },
    argv: [],
  });
}

/** The headers of a binary batch request as a gateway sends it: `token`, this wire version. */
export function batchHeaders(token: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    'content-type': STORAGE_RPC_CONTENT_TYPE,
    [STORAGE_RPC_VERSION_HEADER]: String(STORAGE_RPC_VERSION),
  };
}

/** POST /v1/batch through inject(): expects a 200 binary answer and returns its results. */
export async function injectBatch(
  app: StorageApi,
  token: string,
  ops: RpcOp[],
): Promise<RpcResult[]> {
  const res = await app.api.inject({
    method: 'POST',
    url: '/v1/batch',
    headers: batchHeaders(token),
    payload: encodeBatchRequest(ops),
  });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe(STORAGE_RPC_CONTENT_TYPE);
  return decodeBatchResponse(res.rawPayload, ops);
}

/** POST /v1/batch over a real port (`baseUrl`, e.g. http://127.0.0.1:PORT), as `injectBatch`. */
export async function postBatch(
  baseUrl: string,
  token: string,
  ops: RpcOp[],
): Promise<RpcResult[]> {
  const res = await fetch(`${baseUrl}/v1/batch`, {
    method: 'POST',
    headers: batchHeaders(token),
    body: encodeBatchRequest(ops),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(STORAGE_RPC_CONTENT_TYPE);
  return decodeBatchResponse(Buffer.from(await res.arrayBuffer()), ops);
}
