// Settings every Shoal service has, defined once so their names, values and
// defaults cannot drift apart between services. The helm chart and the tests
// set these names: renaming one is a breaking change.
import { isIP } from 'node:net';
import { Type } from '@sinclair/typebox';
import { SECRET } from './load.ts';

/** pino's levels; `silent` turns logging off. */
export const LogLevel = Type.Union(
  [
    Type.Literal('fatal'),
    Type.Literal('error'),
    Type.Literal('warn'),
    Type.Literal('info'),
    Type.Literal('debug'),
    Type.Literal('trace'),
    Type.Literal('silent'),
  ],
  { default: 'info', description: 'pino log level; `silent` turns logging off' },
);

/** A TCP or UDP port; 0 picks a free one (tests). */
export const Port = (defaultPort: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: defaultPort, description });

/** The admin server (`/healthz`, `/readyz`, `/metrics`) of a service listening on `defaultPort`. */
export const adminServerSettings = (defaultPort: number) => ({
  ADMIN_HOST: Type.String({
    default: '::',
    description:
      'Address of the admin server (`/healthz`, `/readyz`, `/metrics`); `::` is dual-stack',
  }),
  ADMIN_PORT: Port(defaultPort, 'Port of the admin server (`/healthz`, `/readyz`, `/metrics`)'),
});

/**
 * A service's own listener (HOST, PORT) beside its admin server. Both hosts
 * must be IP literals: pass `listenerChecks` as the loader's `refine`.
 */
export const listenerSettings = (
  port: { default: number; description: string },
  adminPort: number,
  hostDescription: string,
) => ({
  HOST: Type.String({ default: '::', description: hostDescription }),
  PORT: Port(port.default, port.description),
  ...adminServerSettings(adminPort),
});

/** The `refine` checks of listenerSettings. */
export const listenerChecks = { HOST: ipLiteral, ADMIN_HOST: ipLiteral };

/** Settings of every service's process: logging and the SIGTERM drain. */
export const processSettings = {
  LOG_LEVEL: LogLevel,
  SHUTDOWN_GRACE_SECONDS: Type.Number({
    minimum: 0,
    maximum: 3600,
    default: 25,
    description:
      'On SIGTERM, in-flight work is drained for at most this long before the process exits',
  }),
};

/** storage-api's shared bearer token, as storage-api and its callers (gateways, gc-workers) spell it. */
export const storageApiToken = (description: string) =>
  Type.String({ minLength: 16, ...SECRET, description });

/** A `refine` check: the value is an IP address literal. */
export function ipLiteral(host: string): string | undefined {
  return isIP(host) === 0
    ? 'must be an IP address literal such as ::, 0.0.0.0 or 127.0.0.1'
    : undefined;
}
