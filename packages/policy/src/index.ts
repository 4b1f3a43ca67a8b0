// The public surface of @shoal/policy (docs/policy.md): the KV layout and
// contract types, the error catalog, the repository over a DataStore, the
// compiled lookups, the rate limiter and the JWT verifier.
export * from './types.ts';
export * from './errors.ts';
export { createPolicyRepository } from './repository.ts';
export { compilePolicy, EMPTY_SNAPSHOT } from './compile.ts';
export { createRateLimiter } from './rate-limit.ts';
export {
  createSharedRateLimiter,
  type RateCountsSync,
  type SharedRateLimiter,
  type SharedRateLimiterOptions,
  type SharedSyncResult,
} from './shared-rate-limit.ts';
export { createJwtVerifier } from './jwt.ts';
export * from './admin-routes.ts';
export {
  LINKS_CONTEXT,
  checkLink,
  type LinkEntry,
  type LinkInput,
  type LinkView,
} from './links.ts';
export {
  BANS_CONTEXT,
  banKeyOf,
  checkBanAddress,
  banAddress,
  type BanEntry,
  type BanReason,
} from './bans.ts';
