export { configLoader, loadConfig, CONFIG_FILE_ENV, SECRET } from './load.ts';
export type { ConfigSources, LoadConfigOptions, LoadedConfig, DeepReadonly } from './load.ts';
export { ConfigError, configErrors, isConfigError } from './errors.ts';
export type { ConfigErrorCode, ConfigViolation } from './errors.ts';
// Services describe their schema with the same TypeBox this package validates with.
export { Type } from '@sinclair/typebox';
export type { Static, TObject, TSchema } from '@sinclair/typebox';
export {
  LogLevel,
  Port,
  adminServerSettings,
  ipLiteral,
  listenerChecks,
  listenerSettings,
  processSettings,
  storageApiToken,
} from './common.ts';
export { renderConfigReference } from './reference.ts';
export type { ConfigReference, ConfigSection, ServiceSchema } from './reference.ts';
