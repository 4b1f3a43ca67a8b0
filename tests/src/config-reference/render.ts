// docs/configuration.md, generated from the config schemas of every service
// (their `description`s) with a short hand-written header and footer:
//   pnpm --filter @shoal/tests run generate:config
// config-reference.test.ts fails when the committed file is out of step.
import { adminServerSettings, processSettings, renderConfigReference, Type } from '@shoal/config';
import {
  gatewayConfigSchema,
  policyConfigSchema,
  remoteStoreConfigSchema,
} from '@shoal/announce-gateway';
import { configSchema as gcWorkerSchema } from '@shoal/gc-worker';
import { PostgresStoreConfigSchema } from '@shoal/storage/postgres';
import { RedisStoreConfigSchema } from '@shoal/storage/redis';
import { configSchema as storageApiSchema } from '@shoal/storage-api';
import { format, resolveConfig } from 'prettier';

export const CONFIGURATION_MD = 'docs/configuration.md';

const HEADER = `# Configuration

<!-- Generated from the services' config schemas by tests/src/config-reference/render.ts; edit the schemas' descriptions or that file, then run \`pnpm --filter @shoal/tests run generate:config\`. -->

Every Shoal service reads one typed schema at boot (\`@shoal/config\`): from
environment variables, or the same names in a YAML file given by
\`SHOAL_CONFIG_FILE\` or \`--config FILE\` (the environment wins; an empty
variable counts as unset). Every problem is reported at once, with the
variable's name, and the process exits 1; secrets are never echoed. Nothing
reads the environment after boot.

Values are text in the environment: numbers, booleans (\`true\`/\`false\`,
\`1\`/\`0\`, \`yes\`/\`no\`, \`on\`/\`off\`) and comma-separated lists. A
**secret** belongs in a Kubernetes Secret (the chart puts it there), never in
a values file. Each table below lists the settings of one service, or of one
part several services share (the Services column says which read it).

What the settings do in depth: the stores in [redis.md](redis.md),
[postgres.md](postgres.md) and [cockroachdb.md](cockroachdb.md); the tracker
policy in [policy.md](policy.md); storage-api and the remote driver in
[storage-api.md](storage-api.md); leader election in
[gc-worker.md](gc-worker.md); connection limits in [limits.md](limits.md);
all three services on one machine in [local-topology.md](local-topology.md).
`;

const FOOTER = `## Reloading

\`kill -HUP <gateway pid>\` re-reads the config file (\`SHOAL_CONFIG_FILE\` /
\`--config\`; the environment is fixed for the process's life). What applies
without a restart: a Redis ring's \`REDIS_RING_SHARDS\`. Only the swarms that a
changed shard now owns are affected: their download counters move with them,
their peers (ephemeral) return with their next announce. A file that fails
validation is refused with every problem logged, and the running config is
kept. Everything else needs a restart.
`;

const admin = adminServerSettings(0);

/** The file's content, formatted with the repository's Prettier settings. */
export async function renderConfigurationMd(repoRoot: string): Promise<string> {
  const markdown = renderConfigReference({
    header: HEADER,
    footer: FOOTER,
    services: [
      { name: 'announce-gateway', schema: gatewayConfigSchema },
      { name: 'storage-api', schema: storageApiSchema },
      { name: 'gc-worker', schema: gcWorkerSchema },
      // packages/storage/src/postgres/migrate-cli.ts, the chart's migrations Job.
      { name: 'migrations', schema: PostgresStoreConfigSchema },
    ],
    sections: [
      {
        title: 'Every service',
        first: true,
        schema: Type.Object({ ADMIN_HOST: admin.ADMIN_HOST, ...processSettings }),
      },
      {
        title: 'Tracker policy (gateway)',
        intro:
          'Approval lists, private mode (passkeys, JWT), interval jitter and per-address rate limits; every step is off by default. What each step does: [policy.md](policy.md).',
        schema: policyConfigSchema,
      },
      {
        title: 'Remote store (gateway, STORAGE_DRIVER=remote)',
        intro:
          'The gateway calls storage-api over keep-alive HTTP, batching the operations of one event-loop tick ([storage-api.md](storage-api.md)).',
        schema: remoteStoreConfigSchema,
      },
      {
        title: 'Redis store',
        intro:
          'A gateway with `STORAGE_DRIVER=redis`, or storage-api with a `redis` driver. Decisions and memory figures: [redis.md](redis.md).',
        schema: RedisStoreConfigSchema,
      },
      {
        title: 'PostgreSQL / CockroachDB store',
        intro:
          'A gateway with `STORAGE_DRIVER=postgres`, storage-api with a `postgres` driver, and the migrations command. Queries replaced from config take named `@parameters`: [postgres.md](postgres.md), [cockroachdb.md](cockroachdb.md).',
        schema: PostgresStoreConfigSchema,
      },
    ],
  });
  const filepath = `${repoRoot}/${CONFIGURATION_MD}`;
  const options = (await resolveConfig(filepath)) ?? {};
  return format(markdown, { ...options, filepath });
}
