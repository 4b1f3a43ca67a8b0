// `--ttl` and `--timeout`: a whole number and one unit, as operators write
// them in config and chat (`90s`, `30m`, `12h`, `30d`).
import { CliError } from './errors.ts';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** Seconds in `text`, or CLI_ERR_USAGE naming the option. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d{1,9})([smhd])$/.exec(text.trim());
  const n = m === null ? Number.NaN : Number(m[1]);
  if (m === null || !(n > 0)) {
    throw new CliError(
      'CLI_ERR_USAGE',
      `${option} must be a positive number followed by s, m, h or d (90s, 30m, 12h, 30d), not ${JSON.stringify(text)}`,
    );
  }
  return n * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
}
