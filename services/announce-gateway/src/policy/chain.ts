// The gateway's middleware chain (docs/policy.md "The chain in the
// gateway"), built once from the config: a step that is off is not in the
// chain at all, and with every step off there is no chain (HTTP and UDP test
// one `undefined`). Order, cheapest refusal first: rate limit, passkey, JWT,
// client approval, torrent approval. Jitter is not a refusal: http.ts and
// udp.ts add it to `interval`.
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
import type { PeerAddress } from '../client-address.ts';
import { parseJwks, type GatewayConfig } from '../config.ts';
import type { PolicyCache } from './cache.ts';

// Thrown as they are: a flood of refusals must not capture a stack each.
const RATE_LIMITED = new PolicyError('POLICY_ERR_RATE_LIMITED');
const NOT_LOADED = new PolicyError('POLICY_ERR_NOT_LOADED');

export interface PolicyChain {
  /** UDP connects: false when the address is over RATE_LIMIT_CONNECTS_PER_SECOND. */
  connectAllowed: ((peer: PeerAddress, nowMs: number) => boolean) | undefined;
  /** Announces and scrapes: undefined when the rate limit is off. */
  limitRequests: ((peer: PeerAddress, nowMs: number) => void) | undefined;
  /** PASSKEY_REQUIRED: the passkey (path or BEP 41 URL data) must be known and unexpired. */
  readonly passkeyRequired: boolean;
  /** JWT_REQUIRED: awaited between the passkey and the approval steps. */
  readonly jwt: JwtVerifier | undefined;
  /** Passkey step (throws PolicyError). */
  checkPasskey(passkey: string | undefined, nowMs: number): void;
  /** Scrapes: the passkey step, and POLICY_ERR_NOT_LOADED before the first snapshot (throws PolicyError). */
  checkScrape(passkey: string | undefined, nowMs: number): void;
  /** Client then torrent approval (throws PolicyError). */
  checkApproval(infoHash: Buffer, peerId: Buffer): void;
  /** Scrapes: true when this hash must answer zeros (TORRENT_APPROVAL refuses it). */
  scrapeHidden: ((infoHash: Buffer) => boolean) | undefined;
}

export interface PolicyNeeds {
  /** A list or passkey step is on: the gateway needs a loaded snapshot. */
  snapshot: boolean;
  any: boolean;
}

export function policyNeeds(config: GatewayConfig): PolicyNeeds {
  const snapshot =
    config.TORRENT_APPROVAL !== 'off' ||
    config.CLIENT_APPROVAL !== 'off' ||
    config.PASSKEY_REQUIRED;
  return {
    snapshot,
    any:
      snapshot ||
      config.JWT_REQUIRED ||
      config.RATE_LIMIT_ANNOUNCES_PER_SECOND > 0 ||
      config.RATE_LIMIT_CONNECTS_PER_SECOND > 0,
  };
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

/** undefined when every refusing step is off. `cache` is required when policyNeeds().snapshot. */
export function buildPolicyChain(
  config: GatewayConfig,
  cache: PolicyCache | undefined,
  jwt: JwtVerifier | undefined = config.JWT_REQUIRED
    ? createJwtVerifier(jwtOptions(config))
    : undefined,
): PolicyChain | undefined {
  const needs = policyNeeds(config);
  if (!needs.any) return undefined;
  if (needs.snapshot && cache === undefined)
    throw new Error('TORRENT_APPROVAL, CLIENT_APPROVAL or PASSKEY_REQUIRED need a policy cache');

  const limiter = (ratePerSecond: number, burst: number): RateLimiter | undefined =>
    ratePerSecond > 0
      ? createRateLimiter({ ratePerSecond, burst, maxAddresses: config.RATE_LIMIT_MAX_ADDRESSES })
      : undefined;
  const connects = limiter(config.RATE_LIMIT_CONNECTS_PER_SECOND, config.RATE_LIMIT_CONNECT_BURST);
  const requests = limiter(
    config.RATE_LIMIT_ANNOUNCES_PER_SECOND,
    config.RATE_LIMIT_ANNOUNCE_BURST,
  );
  const passkeyRequired = config.PASSKEY_REQUIRED;
  const clientMode: ApprovalMode = config.CLIENT_APPROVAL;
  const torrentMode: ApprovalMode = config.TORRENT_APPROVAL;

  function loaded(): CompiledPolicy {
    const current = cache?.current;
    if (current === undefined) throw NOT_LOADED;
    return current;
  }

  return {
    connectAllowed:
      connects === undefined
        ? undefined
        : (peer, nowMs) => connects.take(peer.family, peer.bytes, nowMs),
    limitRequests:
      requests === undefined
        ? undefined
        : (peer, nowMs) => {
            if (!requests.take(peer.family, peer.bytes, nowMs)) throw RATE_LIMITED;
          },
    passkeyRequired,
    jwt,
    checkPasskey(passkey, nowMs) {
      if (passkeyRequired) loaded().checkPasskey(passkey, nowMs);
    },
    checkScrape(passkey, nowMs) {
      if (passkeyRequired) loaded().checkPasskey(passkey, nowMs);
      else if (needs.snapshot) loaded();
    },
    checkApproval(infoHash, peerId) {
      if (clientMode === 'off' && torrentMode === 'off') return;
      const policy = loaded();
      policy.checkClient(peerId, clientMode);
      policy.checkTorrent(infoHash, torrentMode);
    },
    scrapeHidden:
      torrentMode === 'off'
        ? undefined
        : (infoHash) => {
            try {
              loaded().checkTorrent(infoHash, torrentMode);
              return false;
            } catch {
              return true;
            }
          },
  };
}

/**
 * The passkey and jwt of BEP 41 URL data: `/announce/<passkey>`, optionally
 * followed by `?jwt=<token>` (a tracker URL `udp://host:port/announce/<passkey>?jwt=...`
 * is sent as URL data by libtorrent-style clients). The passkey is the last
 * path segment when the path has two or more.
 */
export function parseUrlData(urlData: string | undefined): {
  passkey: string | undefined;
  jwt: string | undefined;
} {
  if (urlData === undefined) return { passkey: undefined, jwt: undefined };
  const q = urlData.indexOf('?');
  const path = q === -1 ? urlData : urlData.slice(0, q);
  const slash = path.lastIndexOf('/');
  const passkey = slash > 0 && slash < path.length - 1 ? path.slice(slash + 1) : undefined;
  return { passkey, jwt: q === -1 ? undefined : queryParam(urlData.slice(q + 1), 'jwt') };
}

/** One parameter of a raw query string, percent-decoded; undefined when absent. */
export function queryParam(query: string, name: string): string | undefined {
  let i = 0;
  while (i <= query.length) {
    let amp = query.indexOf('&', i);
    if (amp === -1) amp = query.length;
    if (
      amp - i > name.length &&
      query.charCodeAt(i + name.length) === 0x3d &&
      query.startsWith(name, i)
    ) {
      const value = query.slice(i + name.length + 1, amp);
      try {
        return decodeURIComponent(value.replaceAll('+', ' '));
      } catch {
        // Malformed escapes: verification fails on the raw text.
        return value;
      }
    }
    i = amp + 1;
  }
  return undefined;
}
