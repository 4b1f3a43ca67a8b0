import { describe, expect, it } from 'vitest';
import { isConfigError, type ConfigError } from '@shoal/config';
import { loadGatewayConfig } from './config.ts';

describe('gateway config', () => {
  it('defaults to a dual-stack tracker on 6969 with the pinned intervals', () => {
    const c = loadGatewayConfig({ env: {}, argv: [] });
    expect(c.HOST).toBe('::');
    expect(c.PORT).toBe(6969);
    expect(c.ANNOUNCE_ROUTES).toEqual(['/announce']);
    expect(c.ANNOUNCE_INTERVAL_SECONDS).toBe(1800);
    expect(c.MIN_INTERVAL_SECONDS).toBe(900);
    expect(c.PEER_LIFETIME_SECONDS).toBe(1860);
    expect(c.NUMWANT_DEFAULT).toBe(50);
    expect(c.NUMWANT_MAX).toBe(200);
    expect(c.ALLOW_IP_PARAM).toBe(false);
    expect(c.UDP_CONNECTION_ID_SECRET).toBeUndefined();
  });

  it('lists every invalid setting at once, by variable name, without echoing the secret', () => {
    let error: ConfigError | undefined;
    try {
      loadGatewayConfig({
        env: {
          HOST: 'tracker.example',
          PORT: '70000',
          TRUSTED_PROXIES: '10.0.0.0/8,not-a-cidr',
          UDP_CONNECTION_ID_SECRET: 'sekrit',
          LOG_LEVEL: 'chatty',
          ANNOUNCE_INTERVAL_SECONDS: 'often',
          STORAGE_DRIVER: 'floppy',
        },
        argv: [],
      });
    } catch (err) {
      if (isConfigError(err)) error = err;
    }
    expect(error?.code).toBe('CONFIG_ERR_INVALID');
    expect(error?.violations.map((v) => v.key).sort()).toEqual([
      'ANNOUNCE_INTERVAL_SECONDS',
      'HOST',
      'LOG_LEVEL',
      'PORT',
      'STORAGE_DRIVER',
      'TRUSTED_PROXIES',
      'UDP_CONNECTION_ID_SECRET',
    ]);
    expect(error?.message).toContain('not-a-cidr');
    expect(error?.message).not.toContain('sekrit');
  });

  it('bounds slow clients by default, and refuses values that would switch a bound off', () => {
    const c = loadGatewayConfig({ env: {}, argv: [] });
    expect({
      request: c.HTTP_REQUEST_TIMEOUT_MS,
      keepAlive: c.HTTP_KEEPALIVE_TIMEOUT_SECONDS,
      header: c.HTTP_MAX_HEADER_BYTES,
      connections: c.HTTP_MAX_CONNECTIONS,
    }).toEqual({ request: 10_000, keepAlive: 5, header: 16_384, connections: 10_000 });
    // At 0, Node would turn the timeouts and the connection cap off (docs/limits.md).
    let error: ConfigError | undefined;
    try {
      loadGatewayConfig({
        env: {
          HTTP_REQUEST_TIMEOUT_MS: '0',
          HTTP_KEEPALIVE_TIMEOUT_SECONDS: '0',
          HTTP_MAX_HEADER_BYTES: '0',
          HTTP_MAX_CONNECTIONS: '0',
        },
        argv: [],
      });
    } catch (err) {
      if (isConfigError(err)) error = err;
    }
    expect(error?.violations.map((v) => v.key).sort()).toEqual([
      'HTTP_KEEPALIVE_TIMEOUT_SECONDS',
      'HTTP_MAX_CONNECTIONS',
      'HTTP_MAX_HEADER_BYTES',
      'HTTP_REQUEST_TIMEOUT_MS',
    ]);
  });

  it('refuses settings that contradict each other', () => {
    expect(() =>
      loadGatewayConfig({
        env: { MIN_INTERVAL_SECONDS: '2000', NUMWANT_DEFAULT: '300' },
        argv: [],
      }),
    ).toThrow(/MIN_INTERVAL_SECONDS[\s\S]*NUMWANT_DEFAULT/);
  });

  it('turns every policy step off by default', () => {
    const c = loadGatewayConfig({ env: {}, argv: [] });
    expect(c.TORRENT_APPROVAL).toBe('off');
    expect(c.CLIENT_APPROVAL).toBe('off');
    expect(c.PASSKEY_REQUIRED).toBe(false);
    expect(c.JWT_REQUIRED).toBe(false);
    expect(c.JWT_ALGORITHMS).toEqual(['RS256', 'ES256', 'EdDSA']);
    expect(c.ANNOUNCE_INTERVAL_JITTER_SECONDS).toBe(0);
    expect(c.RATE_LIMIT_ANNOUNCES_PER_SECOND).toBe(0);
    expect(c.RATE_LIMIT_CONNECTS_PER_SECOND).toBe(0);
    expect(c.RATE_LIMIT_MAX_ADDRESSES).toBe(100_000);
    expect(c.POLICY_REFRESH_SECONDS).toBe(10);
    expect(c.ADMIN_API_TOKEN).toBeUndefined();
  });

  it('lists every policy problem at once: JWT without issuer or key set, bad JWKS, bad modes', () => {
    let error: ConfigError | undefined;
    try {
      loadGatewayConfig({
        env: {
          JWT_REQUIRED: 'true',
          TORRENT_APPROVAL: 'maybe',
          POLICY_REFRESH_SECONDS: '0',
          ADMIN_API_TOKEN: 'short-secret',
        },
        argv: [],
      });
    } catch (err) {
      if (isConfigError(err)) error = err;
    }
    expect(error?.violations.map((v) => v.key).sort()).toEqual([
      'ADMIN_API_TOKEN',
      'POLICY_REFRESH_SECONDS',
      'TORRENT_APPROVAL',
    ]);
    expect(error?.message).not.toContain('short-secret');

    // The cross-field checks run once every value is valid.
    const problems = (env: Record<string, string>): string[] => {
      try {
        loadGatewayConfig({ env, argv: [] });
        return [];
      } catch (err) {
        return isConfigError(err) ? err.violations.map((v) => v.key).sort() : ['(other)'];
      }
    };
    expect(problems({ JWT_REQUIRED: 'true' })).toEqual(['JWT_ISSUER', 'JWT_JWKS_URL']);
    expect(
      problems({
        JWT_REQUIRED: 'true',
        JWT_ISSUER: 'https://auth.example',
        JWT_JWKS_URL: 'https://auth.example/jwks.json',
        JWT_JWKS: '{"keys":[]}',
      }),
    ).toEqual(['JWT_JWKS_URL']);
    expect(
      problems({
        JWT_REQUIRED: 'true',
        JWT_ISSUER: 'https://auth.example',
        JWT_JWKS: '{"kty":"EC"}',
      }),
    ).toEqual(['JWT_JWKS']);
    expect(problems({ JWT_JWKS: 'not json' })).toEqual(['JWT_JWKS']);
    expect(
      problems({
        JWT_REQUIRED: 'true',
        JWT_ISSUER: 'https://auth.example',
        JWT_JWKS: '{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}',
        JWT_ALGORITHMS: 'ES256,EdDSA',
      }),
    ).toEqual([]);
  });

  it("checks the chosen store driver's settings, and only that driver's", () => {
    const load = (env: Record<string, string>) => () => loadGatewayConfig({ env, argv: [] });
    // Sentinel mode with no sentinels: a problem for the redis driver alone.
    const sentinelless = { REDIS_MODE: 'sentinel' };
    expect(load({ ...sentinelless, STORAGE_DRIVER: 'redis' })).toThrow(/REDIS_SENTINELS/);
    expect(load({ ...sentinelless, STORAGE_DRIVER: 'postgres' })).toThrow(/DATABASE_URL/);
    expect(load({ ...sentinelless, STORAGE_DRIVER: 'postgres' })).not.toThrow(/REDIS_SENTINELS/);
    expect(load({ ...sentinelless, STORAGE_DRIVER: 'memory' })()).toMatchObject({
      STORAGE_DRIVER: 'memory',
    });
  });
});
