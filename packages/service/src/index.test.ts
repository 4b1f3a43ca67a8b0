// The "listening" line (docs/decisions.md "Listening line"): at every
// LOG_LEVEL but silent, with nothing else let through.
import { pino, type Level, type LevelWithSilent } from 'pino';
import { describe, expect, it } from 'vitest';
import { captureLogs } from '@shoal/testing/logs';
import { logListening } from './index.ts';

function linesAt(level: LevelWithSilent): Array<{ msg: string; level: number; port?: number }> {
  const logs = captureLogs<{ msg: string; level: number; port?: number }>();
  const logger = pino({ level }, logs.stream);
  logger.info('an info line');
  logListening(logger, { port: 6969 });
  logger.child({ module: 'x' }).info('another info line');
  return logs.lines;
}

describe('logListening', () => {
  it.each<Level>(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])(
    'writes the listening line at LOG_LEVEL=%s as an info record, and no other info line above info',
    (level) => {
      const lines = linesAt(level);
      expect(lines.filter((l) => l.msg === 'listening')).toEqual([
        expect.objectContaining({ msg: 'listening', level: 30, port: 6969 }),
      ]);
      const shown = ['debug', 'trace', 'info'].includes(level);
      expect(lines.filter((l) => l.msg !== 'listening')).toHaveLength(shown ? 2 : 0);
    },
  );

  it('writes nothing at LOG_LEVEL=silent', () => {
    expect(linesAt('silent')).toEqual([]);
  });
});
