export { buildGcWorker } from './app.ts';
export type { GcWorker, GcWorkerDeps } from './app.ts';
export { configSchema, loadGcWorkerConfig } from './config.ts';
export type { GcWorkerConfig } from './config.ts';
