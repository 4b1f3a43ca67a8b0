// Writes the dashboards, rules, local prometheus.yml and docs/metrics.md:
//   pnpm --filter @shoal/monitoring run generate
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderArtefacts } from './render.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

for (const [path, content] of await renderArtefacts()) {
  const target = join(repoRoot, path);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, content);
  process.stdout.write(`wrote ${path}\n`);
}
