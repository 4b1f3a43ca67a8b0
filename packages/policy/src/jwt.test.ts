import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK, JWTVerifyGetKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError } from './errors.ts';
import { createJwtVerifier } from './jwt.ts';
import type { JwtVerifierOptions } from './types.ts';

const ISS = 'https://auth.example';
const AUD = 'shoal-tracker';
const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;
const HASH = Buffer.from('0123456789abcdef0123456789abcdef01234567', 'hex');

let es256: { privateKey: CryptoKey; jwk: JWK };
let stranger: { privateKey: CryptoKey; jwk: JWK };
let rs256: { privateKey: CryptoKey; jwk: JWK };
let jwks: JSONWebKeySet;

async function keyPair(alg: string, kid: string): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

beforeAll(async () => {
  es256 = await keyPair('ES256', 'k1');
  rs256 = await keyPair('RS256', 'k2');
  stranger = await keyPair('ES256', 'k1'); // same kid, other key: a forgery
  jwks = { keys: [es256.jwk, rs256.jwk] };
});

interface TokenOptions {
  key?: { privateKey: CryptoKey; jwk: JWK };
  iss?: string;
  aud?: string | undefined;
  exp?: number | undefined;
  nbf?: number;
  infohash?: string | undefined;
}

function token(o: TokenOptions = {}): Promise<string> {
  const key = o.key ?? es256;
  const claims: Record<string, unknown> = {};
  const infohash = 'infohash' in o ? o.infohash : HASH.toString('hex');
  if (infohash !== undefined) claims.infohash = infohash;
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: key.jwk.alg as string, kid: key.jwk.kid as string })
    .setIssuer(o.iss ?? ISS)
    .setIssuedAt(NOW_S);
  const aud = 'aud' in o ? o.aud : AUD;
  if (aud !== undefined) jwt = jwt.setAudience(aud);
  const exp = 'exp' in o ? o.exp : NOW_S + 600;
  if (exp !== undefined) jwt = jwt.setExpirationTime(exp);
  if (o.nbf !== undefined) jwt = jwt.setNotBefore(o.nbf);
  return jwt.sign(key.privateKey);
}

/** Defaults overridden by `extra`; a key set to undefined there is left out. */
function options(
  extra: {
    [K in keyof JwtVerifierOptions]?: JwtVerifierOptions[K] | undefined;
  } = {},
): JwtVerifierOptions {
  const merged: Record<string, unknown> = {
    issuer: ISS,
    audience: AUD,
    jwks,
    algorithms: ['ES256', 'RS256'],
    cacheSize: 100,
    clockToleranceSeconds: 0,
    ...extra,
  };
  for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
  return merged as unknown as JwtVerifierOptions;
}

/** A local key set that counts its lookups: one per signature actually verified. */
function countingKeySet(): { getKey: JWTVerifyGetKey; calls: () => number } {
  const inner = createLocalJWKSet(jwks);
  let n = 0;
  return {
    getKey: (header, input) => {
      n++;
      return inner(header, input);
    },
    calls: () => n,
  };
}

async function rejection(p: Promise<unknown>): Promise<PolicyError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return err as PolicyError;
  }
  throw new Error('expected verify() to reject');
}

describe('createJwtVerifier', () => {
  it('accepts a valid token (ES256 and RS256), infohash compared case-insensitively', async () => {
    const v = createJwtVerifier(options());
    await expect(v.verify(await token(), HASH, NOW)).resolves.toBeUndefined();
    await expect(v.verify(await token({ key: rs256 }), HASH, NOW)).resolves.toBeUndefined();
    const upper = await token({ infohash: HASH.toString('hex').toUpperCase() });
    await expect(v.verify(upper, HASH, NOW)).resolves.toBeUndefined();
  });

  it('does not check aud when no audience is configured', async () => {
    const v = createJwtVerifier(options({ audience: undefined }));
    await expect(v.verify(await token({ aud: undefined }), HASH, NOW)).resolves.toBeUndefined();
  });

  it('refuses a missing token with POLICY_ERR_JWT_MISSING', async () => {
    const v = createJwtVerifier(options());
    expect((await rejection(v.verify(undefined, HASH, NOW))).code).toBe('POLICY_ERR_JWT_MISSING');
    expect((await rejection(v.verify('', HASH, NOW))).code).toBe('POLICY_ERR_JWT_MISSING');
  });

  const invalid: Array<[string, () => Promise<string>, Parameters<typeof options>[0]?]> = [
    ['wrong issuer', () => token({ iss: 'https://evil.example' })],
    ['wrong audience', () => token({ aud: 'another-tracker' })],
    ['no audience when one is configured', () => token({ aud: undefined })],
    ['expired', () => token({ exp: NOW_S - 1 })],
    ['no exp', () => token({ exp: undefined })],
    ['not yet valid', () => token({ nbf: NOW_S + 60 })],
    ['other infohash', () => token({ infohash: 'ff'.repeat(20) })],
    ['no infohash claim', () => token({ infohash: undefined })],
    ['signed by a key not in the set', () => token({ key: stranger })],
    ['alg not allowed', () => token({ key: rs256 }), { algorithms: ['ES256'] }],
    ['garbage', () => Promise.resolve('not.a.jwt')],
  ];
  for (const [name, make, extra] of invalid) {
    it(`refuses a token: ${name}`, async () => {
      const v = createJwtVerifier(options(extra));
      const err = await rejection(v.verify(await make(), HASH, NOW));
      expect(err.code).toBe('POLICY_ERR_JWT_INVALID');
      expect(err.failureReason).toBe('invalid jwt');
    });
  }

  it('keeps the jose error as cause', async () => {
    const v = createJwtVerifier(options());
    const err = await rejection(v.verify(await token({ exp: NOW_S - 1 }), HASH, NOW));
    expect((err.cause as { code?: string }).code).toBe('ERR_JWT_EXPIRED');
  });

  it('applies clockToleranceSeconds to exp', async () => {
    const v = createJwtVerifier(options({ clockToleranceSeconds: 30 }));
    await expect(v.verify(await token({ exp: NOW_S - 10 }), HASH, NOW)).resolves.toBeUndefined();
  });

  it('remembers a verified token until its exp, per info hash', async () => {
    const keys = countingKeySet();
    const v = createJwtVerifier(options(), keys.getKey);
    const jwt = await token({ exp: NOW_S + 60 });
    await v.verify(jwt, HASH, NOW);
    expect(keys.calls()).toBe(1);
    await v.verify(jwt, HASH, NOW + 1000);
    await v.verify(jwt, HASH, NOW + 59_999);
    expect(keys.calls()).toBe(1);
    // Another info hash is not a cache hit: verified (and refused) again.
    const other = Buffer.alloc(20, 0xff);
    expect((await rejection(v.verify(jwt, other, NOW))).code).toBe('POLICY_ERR_JWT_INVALID');
    expect(keys.calls()).toBe(2);
    // At exp the cache stops answering and jose refuses.
    expect((await rejection(v.verify(jwt, HASH, NOW + 60_000))).code).toBe(
      'POLICY_ERR_JWT_INVALID',
    );
    expect(keys.calls()).toBe(3);
  });

  it('verifies every time with cacheSize 0', async () => {
    const keys = countingKeySet();
    const v = createJwtVerifier(options({ cacheSize: 0 }), keys.getKey);
    const jwt = await token();
    await v.verify(jwt, HASH, NOW);
    await v.verify(jwt, HASH, NOW);
    expect(keys.calls()).toBe(2);
  });

  it('needs exactly one of jwks and jwksUrl', () => {
    expect(() => createJwtVerifier(options({ jwks: undefined }))).toThrow(RangeError);
    expect(() => createJwtVerifier(options({ jwksUrl: 'http://127.0.0.1:1/jwks' }))).toThrow(
      RangeError,
    );
  });
});

describe('remote JWKS over loopback', () => {
  let server: ReturnType<typeof createServer>;
  let url: string;
  let fetches = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('fetches the key set once and verifies with it', async () => {
    const v = createJwtVerifier(options({ jwks: undefined, jwksUrl: url }));
    await expect(v.verify(await token(), HASH, NOW)).resolves.toBeUndefined();
    await expect(v.verify(await token({ key: rs256 }), HASH, NOW)).resolves.toBeUndefined();
    expect((await rejection(v.verify(await token({ key: stranger }), HASH, NOW))).code).toBe(
      'POLICY_ERR_JWT_INVALID',
    );
    expect(fetches).toBe(1);
  });

  it('says retry later (POLICY_ERR_JWT_KEYS_UNAVAILABLE) when the key set answers 404', async () => {
    const v = createJwtVerifier(
      options({ jwks: undefined, jwksUrl: url.replace('jwks.json', 'gone') }),
    );
    const err = await rejection(v.verify(await token(), HASH, NOW));
    expect(err.code).toBe('POLICY_ERR_JWT_KEYS_UNAVAILABLE');
    expect(err.ours).toBe(true);
    expect(err.cause).toBeDefined();
  });

  it('says retry later when nothing listens at the key set URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const v = createJwtVerifier(
      options({ jwks: undefined, jwksUrl: `http://127.0.0.1:${port}/jwks.json` }),
    );
    expect((await rejection(v.verify(await token(), HASH, NOW))).code).toBe(
      'POLICY_ERR_JWT_KEYS_UNAVAILABLE',
    );
    // A token signed by a key the (reachable) set lacks is still the client's fault.
    const reachable = createJwtVerifier(options({ jwks: undefined, jwksUrl: url }));
    expect(
      (await rejection(reachable.verify(await token({ key: stranger }), HASH, NOW))).code,
    ).toBe('POLICY_ERR_JWT_INVALID');
  });
});
