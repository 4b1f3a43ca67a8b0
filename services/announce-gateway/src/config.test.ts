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

  it('refuses settings that contradict each other', () => {
    expect(() =>
      loadGatewayConfig({
        env: { MIN_INTERVAL_SECONDS: '2000', NUMWANT_DEFAULT: '300' },
        argv: [],
      }),
    ).toThrow(/MIN_INTERVAL_SECONDS[\s\S]*NUMWANT_DEFAULT/);
  });
});
