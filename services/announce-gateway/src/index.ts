export { buildGateway, type Gateway, type GatewayDeps, type ListeningPorts } from './gateway.ts';
export {
  gatewayConfigSchema,
  loadGatewayConfig,
  policyConfigSchema,
  type GatewayConfig,
} from './config.ts';
export { createStorage, type GatewayStorage, type StorageHandle } from './storage.ts';
export { gatewayErrors, GatewayError, isGatewayError, type GatewayErrorCode } from './errors.ts';
export { createRemoteStore, type RemoteStore, type RemoteStoreDeps } from './remote/store.ts';
export { remoteStoreConfigSchema, type RemoteStoreConfig } from './remote/config.ts';
export {
  createEmbeddedPolicySource,
  createRemotePolicySource,
  policySourceFor,
  type PolicySource,
} from './policy/source.ts';
export type { PolicyCache } from './policy/cache.ts';
export { startSwarmStats, type SwarmStats } from './swarm-stats.ts';
export { createWorkerMetrics, GAUGE_AGGREGATION, type WorkerMetrics } from './workers/metrics.ts';
export { usableCores } from './workers/cores.ts';
export { sharedStoreFit, sharedStoreMovesPeers } from './workers/shared-store.ts';
export { openWsPlace } from './websocket/place.ts';
export { loadUdpBatch, type UdpBatchAddon } from './udp-batch.ts';
