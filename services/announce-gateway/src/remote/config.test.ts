import { describe, expect, it } from 'vitest';
import { isConfigError } from '@shoal/config';
import { loadGatewayConfig } from '../config.ts';

function violations(env: Record<string, string>): Array<{ key: string; message: string }> {
  try {
    loadGatewayConfig({ env, argv: [] });
  } catch (err) {
    if (isConfigError(err)) return [...err.violations];
    throw err;
  }
  return [];
}

describe('STORAGE_DRIVER=remote settings', () => {
  it('requires STORAGE_API_URL and STORAGE_API_TOKEN, reported together', () => {
    const keys = violations({ STORAGE_DRIVER: 'remote' }).map((v) => v.key);
    expect(keys).toEqual(expect.arrayContaining(['STORAGE_API_URL', 'STORAGE_API_TOKEN']));
  });

  it('refuses a URL with a path and a token under 16 characters, without echoing the token', () => {
    const found = violations({
      STORAGE_DRIVER: 'remote',
      STORAGE_API_URL: 'http://storage-api:8080/v1/batch',
      STORAGE_API_TOKEN: 'short-secret',
    });
    expect(found.map((v) => v.key).sort()).toEqual(['STORAGE_API_TOKEN', 'STORAGE_API_URL']);
    expect(JSON.stringify(found)).not.toContain('short-secret');
  });

  it('has defaults that batch and fail fast', () => {
    const config = loadGatewayConfig({
      env: {
        STORAGE_DRIVER: 'remote',
        STORAGE_API_URL: 'http://storage-api:8080',
        STORAGE_API_TOKEN: '0123456789abcdef',
      },
      argv: [],
    });
    expect(config).toMatchObject({
      REMOTE_BATCHING: true,
      REMOTE_CONNECTIONS: 4,
      REMOTE_BATCH_MAX_OPS: 256,
      REMOTE_TIMEOUT_MS: 2000,
      REMOTE_BREAKER_FAILURES: 5,
      REMOTE_BREAKER_OPEN_MS: 2000,
    });
  });

  it('the embedded drivers need none of it', () => {
    expect(violations({ STORAGE_DRIVER: 'memory' })).toEqual([]);
  });
});
