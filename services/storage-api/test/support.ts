// Test helpers for storage-api's own tests (docs/testing.md "Where test code
// lives").
import { LOOPBACK_ENV } from '@shoal/testing/launcher';
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
