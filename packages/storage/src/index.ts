// The public contract of @shoal/storage. Drivers are subpath exports
// (`@shoal/storage/memory`, `/redis`, `/postgres`) so that importing the
// contract never loads a database client.
export type * from './types.ts';
export * from './errors.ts';
