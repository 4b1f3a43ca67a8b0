import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GatewayError, gatewayErrors, isGatewayError } from './errors.ts';

describe('gateway error catalog', () => {
  it('is documented code by code, with the failure text clients see, in README.md', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const documented = [...readme.matchAll(/^\| `(GATEWAY_ERR_[A-Z_]+)` +\| ([^|]+) \|/gm)].map(
      (m) => [m[1], m[2]?.trim()],
    );
    expect(documented).toEqual(
      Object.entries(gatewayErrors).map(([code, entry]) => [code, entry.failureReason]),
    );
  });

  it('carries its code and failure reason', () => {
    const err = new GatewayError('GATEWAY_ERR_BAD_PORT');
    expect(isGatewayError(err)).toBe(true);
    expect(err.code).toBe('GATEWAY_ERR_BAD_PORT');
    expect(err.failureReason).toBe('invalid port');
  });
});
