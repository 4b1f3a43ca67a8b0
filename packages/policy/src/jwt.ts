// JWT announce authorisation, as chihaya's jwt middleware does it
// (docs/policy.md "The chain in the gateway"): a token signed by a key of the
// configured set (RFC 7517 JWKS, remote or inline), `iss`, `aud` when
// configured, `exp`/`nbf`, and an `infohash` claim naming the announced
// torrent. Verification is jose's; a verified token is remembered until its
// exp so a client re-announcing every interval pays for the signature once.
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import { PolicyError } from './errors.ts';
import type { JwtVerifier, JwtVerifierOptions } from './types.ts';

const JWT_MISSING = new PolicyError('POLICY_ERR_JWT_MISSING');

/**
 * `keySet` replaces the key set `opts` describe (jwksUrl / jwks) with one the
 * caller already holds: the gateway passes none; tests pass a counting one.
 */
export function createJwtVerifier(opts: JwtVerifierOptions, keySet?: JWTVerifyGetKey): JwtVerifier {
  if (opts.algorithms.length === 0) throw new RangeError('algorithms must name at least one alg');
  if (!Number.isInteger(opts.cacheSize) || opts.cacheSize < 0) {
    throw new RangeError(`cacheSize must be a non-negative integer, got ${opts.cacheSize}`);
  }
  if (!(opts.clockToleranceSeconds >= 0)) {
    throw new RangeError(`clockToleranceSeconds must be >= 0, got ${opts.clockToleranceSeconds}`);
  }
  const getKey = keySet ?? keySetOf(opts);
  const toleranceMs = opts.clockToleranceSeconds * 1000;
  // token + info hash -> the token's exp in ms. lru-cache needs max >= 1;
  // cacheSize 0 means every announce verifies.
  const cache =
    opts.cacheSize > 0 ? new LRUCache<string, number>({ max: opts.cacheSize }) : undefined;

  return {
    async verify(token: string | undefined, infoHash: Buffer, nowMs: number): Promise<void> {
      if (token === undefined || token === '') throw JWT_MISSING;
      const hex = infoHash.toString('hex');
      const cacheKey = `${hex}:${token}`;
      const cachedExp = cache?.get(cacheKey);
      if (cachedExp !== undefined) {
        // jose refuses when exp <= now - tolerance; the cache answers the same.
        if (nowMs - toleranceMs < cachedExp) return;
        cache?.delete(cacheKey);
      }
      let exp: number;
      try {
        const { payload } = await jwtVerify(token, getKey, {
          issuer: opts.issuer,
          ...(opts.audience === undefined ? {} : { audience: opts.audience }),
          algorithms: opts.algorithms,
          clockTolerance: opts.clockToleranceSeconds,
          currentDate: new Date(nowMs),
          // exp is required: a token without one would be valid forever.
          requiredClaims: ['exp', 'infohash'],
        });
        const claim = payload.infohash;
        if (typeof claim !== 'string' || claim.toLowerCase() !== hex) {
          throw new PolicyError(
            'POLICY_ERR_JWT_INVALID',
            'infohash claim does not name this torrent',
          );
        }
        exp = (payload.exp as number) * 1000;
      } catch (err) {
        if (err instanceof PolicyError) throw err;
        const detail = err instanceof Error ? err.message : undefined;
        // The key set could not be had (network, timeout, non-200, junk JSON):
        // the token may be fine, so the client is told to retry, not refused.
        if (keysUnavailable(err))
          throw new PolicyError('POLICY_ERR_JWT_KEYS_UNAVAILABLE', detail, { cause: err });
        throw new PolicyError('POLICY_ERR_JWT_INVALID', detail, { cause: err });
      }
      cache?.set(cacheKey, exp);
    },
  };
}

const KEY_SET_FAILURES = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

/** jose's own verdicts on a token are JOSEErrors; fetch failures are not, or carry these codes. */
function keysUnavailable(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true;
  return KEY_SET_FAILURES.has(err.code);
}

function keySetOf(opts: JwtVerifierOptions): JWTVerifyGetKey {
  if ((opts.jwksUrl === undefined) === (opts.jwks === undefined)) {
    throw new RangeError('exactly one of jwksUrl and jwks must be set');
  }
  if (opts.jwksUrl !== undefined) return createRemoteJWKSet(new URL(opts.jwksUrl));
  return createLocalJWKSet(opts.jwks as JSONWebKeySet);
}
