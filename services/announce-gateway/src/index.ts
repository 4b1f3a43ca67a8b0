export { buildGateway } from './gateway.ts';
export type { Gateway, GatewayDeps, ListeningPorts } from './gateway.ts';
export { gatewayConfigSchema, loadGatewayConfig } from './config.ts';
export type { GatewayConfig } from './config.ts';
export { createStorage } from './storage.ts';
export type { GatewayStorage, StorageHandle } from './storage.ts';
export { gatewayErrors, GatewayError, isGatewayError } from './errors.ts';
export type { GatewayErrorCode } from './errors.ts';
