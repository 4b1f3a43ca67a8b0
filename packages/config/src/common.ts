// Settings every Shoal service has, defined once so their names, values and
// defaults cannot drift apart between services.
import { Type } from '@sinclair/typebox';

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
  { default: 'info' },
);
