// gc-worker settings (STYLE.md "Config"). Only the admin surface exists until
// the real service lands (issue 5).
import { Type, loadConfig, type LoadConfigOptions, type LoadedConfig } from '@shoal/config';

export const configSchema = Type.Object({
  ADMIN_HOST: Type.String({ default: '::' }),
  ADMIN_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 9092 }),
  LOG_LEVEL: Type.Union(
    [
      Type.Literal('fatal'),
      Type.Literal('error'),
      Type.Literal('warn'),
      Type.Literal('info'),
      Type.Literal('debug'),
      Type.Literal('trace'),
      Type.Literal('silent'),
    ],
    { default: 'info' },
  ),
  SHUTDOWN_GRACE_SECONDS: Type.Number({ minimum: 0, maximum: 3600, default: 25 }),
});

export type GcWorkerConfig = LoadedConfig<typeof configSchema>;

export function loadGcWorkerConfig(
  options: Pick<LoadConfigOptions<typeof configSchema>, 'env' | 'argv' | 'file'> = {},
): GcWorkerConfig {
  return loadConfig(configSchema, options);
}
