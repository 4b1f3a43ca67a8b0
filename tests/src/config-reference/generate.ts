// Writes docs/configuration.md from the config schemas (render.ts).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIGURATION_MD, renderConfigurationMd } from './render.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
await writeFile(join(repoRoot, CONFIGURATION_MD), await renderConfigurationMd(repoRoot));
process.stdout.write(`wrote ${CONFIGURATION_MD}\n`);
