// docs/configuration.md is the generator's output (tests/src/config-reference):
// every setting of every service, with its description, type and default.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gatewayConfigSchema } from '@shoal/announce-gateway';
import { configSchema as gcWorkerSchema } from '@shoal/gc-worker';
import { configSchema as storageApiSchema } from '@shoal/storage-api';
import { CONFIGURATION_MD, renderConfigurationMd } from './config-reference/render.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

describe('the configuration reference', () => {
  it('is committed exactly as the generator writes it', async () => {
    const committed = await readFile(join(repoRoot, CONFIGURATION_MD), 'utf8');
    // Fix: pnpm --filter @shoal/tests run generate:config
    expect(committed).toBe(await renderConfigurationMd(repoRoot));
  });

  it('lists every key of every service, secrets marked', async () => {
    const text = await renderConfigurationMd(repoRoot);
    for (const schema of [gatewayConfigSchema, storageApiSchema, gcWorkerSchema]) {
      for (const key of Object.keys(schema.properties)) expect(text).toContain(`| \`${key}\``);
    }
    const row = (key: string) => text.split('\n').find((l) => l.startsWith(`| \`${key}\``)) ?? '';
    expect(row('STORAGE_API_ADMIN_TOKEN')).toContain('**secret**');
    expect(row('DATABASE_URL')).toContain('**secret**');
    expect(row('NUMWANT_MAX')).not.toContain('**secret**');
    // A key that storage-api overrides is listed for each service with its own default.
    const pipelining = text.split('\n').filter((l) => l.startsWith('| `REDIS_AUTO_PIPELINING`'));
    expect(pipelining).toHaveLength(2);
  });
});
