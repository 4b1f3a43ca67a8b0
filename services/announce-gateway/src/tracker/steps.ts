// The tracker's steps built once from the config (docs/policy.md "The chain in
// the gateway"): a step that is off is not built at all, so with every step
// off a request runs none of this.
import {
  PolicyError,
  createJwtVerifier,
  createRateLimiter,
  type ApprovalMode,
  type CompiledPolicy,
  type JwtVerifier,
  type JwtVerifierOptions,
  type RateLimiter,
} from '@shoal/policy';
import { parseJwks, type GatewayConfig } from '../config.ts';
import { jitteredInterval } from '../load/controller.ts';
import type { PolicyCache } from '../policy/cache.ts';
import type { LinkLearner } from '../policy/links.ts';
import type { AbuseControl } from '../policy/abuse.ts';
import type { SharedLimit } from '../policy/shared-limit.ts';
import type { Step } from './types.ts';

// Thrown as they are: a flood of refusals must not capture a stack each.
const RATE_LIMITED = new PolicyError('POLICY_ERR_RATE_LIMITED');
const NOT_LOADED = new PolicyError('POLICY_ERR_NOT_LOADED');
const BANNED = new PolicyError('POLICY_ERR_BANNED');

export interface PolicyNeeds {
  /** A list or passkey step is on: the gateway needs a loaded snapshot. */
  snapshot: boolean;
  any: boolean;
}

export function policyNeeds(config: GatewayConfig): PolicyNeeds {
  const snapshot =
    config.TORRENT_APPROVAL !== 'off' ||
    config.CLIENT_APPROVAL !== 'off' ||
    config.PASSKEY_REQUIRED ||
    hybridLinks(config) ||
    abuseBans(config);
  return {
    snapshot,
    any:
      snapshot ||
      config.JWT_REQUIRED ||
      config.RATE_LIMIT_ANNOUNCES_PER_SECOND > 0 ||
      config.RATE_LIMIT_CONNECTS_PER_SECOND > 0,
  };
}

/** ABUSE_BANS, or ABUSE_BAN_STRIKES which turns it on. */
export function abuseBans(config: GatewayConfig): boolean {
  return config.ABUSE_BANS || config.ABUSE_BAN_STRIKES > 0;
}

/** HYBRID_LINKS, or HYBRID_LINKS_LEARN which turns it on. */
export function hybridLinks(config: GatewayConfig): boolean {
  return config.HYBRID_LINKS || config.HYBRID_LINKS_LEARN;
}

export function jwtOptions(config: GatewayConfig): JwtVerifierOptions {
  const jwks = config.JWT_JWKS === undefined ? undefined : parseJwks(config.JWT_JWKS);
  return {
    issuer: config.JWT_ISSUER ?? '',
    ...(config.JWT_AUDIENCE === undefined ? {} : { audience: config.JWT_AUDIENCE }),
    ...(config.JWT_JWKS_URL === undefined ? {} : { jwksUrl: config.JWT_JWKS_URL }),
    ...(jwks === undefined ? {} : { jwks }),
    algorithms: [...config.JWT_ALGORITHMS],
    cacheSize: config.JWT_CACHE_SIZE,
    clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE_SECONDS,
  };
}

/**
 * `cache` is required when policyNeeds().snapshot; `jwt` replaces the
 * verifier JWT_REQUIRED builds; `learner` is HYBRID_LINKS_LEARN's, `abuse`
 * ABUSE_BANS', `shared` RATE_LIMIT_SHARED's.
 */
export function buildSteps(
  config: GatewayConfig,
  cache: PolicyCache | undefined,
  jwt: JwtVerifier | undefined = config.JWT_REQUIRED
    ? createJwtVerifier(jwtOptions(config))
    : undefined,
  learner?: LinkLearner,
  abuse?: AbuseControl,
  shared?: SharedLimit,
): Step[] {
  if (policyNeeds(config).snapshot && cache === undefined)
    throw new Error(
      'TORRENT_APPROVAL, CLIENT_APPROVAL, PASSKEY_REQUIRED or HYBRID_LINKS need a policy cache',
    );
  /** The current snapshot; refuses with POLICY_ERR_NOT_LOADED before the first one. */
  function loaded(): CompiledPolicy {
    const current = cache?.current;
    if (current === undefined) throw NOT_LOADED;
    return current;
  }
  const steps: Step[] = [];
  if (abuse !== undefined)
    steps.push({
      name: 'ban',
      admit: (ctx) => {
        if (abuse.banned(ctx.source(), ctx.now)) throw BANNED;
      },
      drops: (source, nowMs) => abuse.banned(source, nowMs),
      strike: (source, reason, nowMs) => abuse.strike(source, reason, nowMs),
    });
  const limit = rateLimitStep(config, shared);
  if (limit !== undefined) steps.push(limit);
  if (config.PASSKEY_REQUIRED)
    steps.push({
      name: 'passkey',
      announce: (ctx) => loaded().checkPasskey(ctx.passkey(), ctx.now),
      scrape: (ctx) => loaded().checkPasskey(ctx.passkey(), ctx.now),
    });
  if (jwt !== undefined)
    steps.push({
      name: 'jwt',
      announceAsync: (ctx, request) => jwt.verify(ctx.jwt(), request.infoHash, ctx.now),
    });
  const clients: ApprovalMode = config.CLIENT_APPROVAL;
  if (clients !== 'off')
    steps.push({
      name: 'client-approval',
      announce: (_ctx, request) => loaded().checkClient(request.peerId, clients),
      scrape: () => void loaded(),
    });
  const torrents: ApprovalMode = config.TORRENT_APPROVAL;
  if (torrents !== 'off')
    steps.push({
      name: 'torrent-approval',
      announce: (_ctx, request) => loaded().checkTorrent(request.infoHash, torrents),
      scrape: () => void loaded(),
      // docs/policy.md: a scrape is many hashes; a refused one answers zeros.
      hides: (infoHash) => {
        try {
          loaded().checkTorrent(infoHash, torrents);
          return false;
        } catch {
          return true;
        }
      },
    });
  if (hybridLinks(config))
    steps.push({
      name: 'hybrid-links',
      // Before the first load nothing is linked yet; /readyz waits for it.
      swarm: (infoHash) => cache?.current?.swarmOf(infoHash) ?? infoHash,
      ...(learner === undefined
        ? {}
        : { announce: (ctx, request) => learner.observe(request, ctx.source(), ctx.now) }),
    });
  const jitter = config.ANNOUNCE_INTERVAL_JITTER_SECONDS;
  const base = config.ANNOUNCE_INTERVAL_SECONDS;
  const max = config.ANNOUNCE_INTERVAL_MAX_SECONDS;
  // docs/load.md "The interval a client is told": a raised interval is spread too.
  if (jitter > 0 || max > base)
    steps.push({
      name: 'jitter',
      interval: (seconds) => jitteredInterval(seconds, base, max, jitter),
    });
  return steps;
}

/**
 * Token buckets per client address for announces and scrapes, and for UDP
 * connects; then the limit shared by all replicas (docs/policy.md "Shared
 * rate limits"), which only sees what this replica's own bucket admitted.
 */
function rateLimitStep(config: GatewayConfig, shared: SharedLimit | undefined): Step | undefined {
  const limiter = (ratePerSecond: number, burst: number): RateLimiter | undefined =>
    ratePerSecond > 0
      ? createRateLimiter({ ratePerSecond, burst, maxAddresses: config.RATE_LIMIT_MAX_ADDRESSES })
      : undefined;
  const connects = limiter(config.RATE_LIMIT_CONNECTS_PER_SECOND, config.RATE_LIMIT_CONNECT_BURST);
  const requests = limiter(
    config.RATE_LIMIT_ANNOUNCES_PER_SECOND,
    config.RATE_LIMIT_ANNOUNCE_BURST,
  );
  if (connects === undefined && requests === undefined) return undefined;
  return {
    name: 'rate-limit',
    ...(requests === undefined
      ? {}
      : {
          admit:
            shared === undefined
              ? (ctx) => {
                  const peer = ctx.source();
                  if (!requests.take(peer.family, peer.bytes, ctx.now)) throw RATE_LIMITED;
                }
              : (ctx) => {
                  const peer = ctx.source();
                  if (
                    !requests.take(peer.family, peer.bytes, ctx.now) ||
                    !shared.take(peer.family, peer.bytes, ctx.now)
                  )
                    throw RATE_LIMITED;
                },
        }),
    ...(connects === undefined
      ? {}
      : { connect: (peer, nowMs) => connects.take(peer.family, peer.bytes, nowMs) }),
  };
}
