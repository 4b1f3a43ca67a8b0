export { buildGateway } from './gateway.ts';
export type { Gateway, GatewayDeps, ListeningPorts } from './gateway.ts';
export { gatewayConfigSchema, loadGatewayConfig, policyConfigSchema } from './config.ts';
export type { GatewayConfig } from './config.ts';
export { createStorage } from './storage.ts';
export type { GatewayStorage, StorageHandle } from './storage.ts';
export { gatewayErrors, GatewayError, isGatewayError } from './errors.ts';
export type { GatewayErrorCode } from './errors.ts';
export { createRemoteStore } from './remote/store.ts';
export type { RemoteStore, RemoteStoreDeps } from './remote/store.ts';
export { remoteStoreConfigSchema } from './remote/config.ts';
export type { RemoteStoreConfig } from './remote/config.ts';
export {
  createEmbeddedPolicySource,
  createRemotePolicySource,
  policySourceFor,
} from './policy/source.ts';
export type { PolicySource } from './policy/source.ts';
export type { PolicyCache } from './policy/cache.ts';
