// The adaptive interval's and shedding's settings (docs/load.md), composed
// into the gateway's schema. Windows are milliseconds so a test can run the
// controller in well under a second; the defaults are production's.
import { Type, type Static } from '@shoal/config';

const Ms = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 3_600_000, default: defaultValue, description });
const Ratio = (defaultValue: number, description: string) =>
  Type.Number({ minimum: 0.01, maximum: 100, default: defaultValue, description });
const Factor = (defaultValue: number, description: string) =>
  Type.Number({ minimum: 1.01, maximum: 10, default: defaultValue, description });
const Waiting = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 10_000_000, default: defaultValue, description });

export const loadConfigSchema = Type.Object({
  ANNOUNCE_INTERVAL_MAX_SECONDS: Type.Integer({
    minimum: 60,
    maximum: 10_800,
    default: 7200,
    description:
      'Ceiling of the load-adaptive interval (docs/load.md); at or below ANNOUNCE_INTERVAL_SECONDS the interval never moves. Public tracker lists accept 300..10800 s',
  }),
  LOAD_SAMPLE_MS: Type.Integer({
    minimum: 10,
    maximum: 60_000,
    default: 1000,
    description: 'How often the load figure is computed and the controller consulted',
  }),
  LOAD_HIGH: Ratio(1, 'A sample at or above this load figure is high (1 = a signal at its target)'),
  LOAD_LOW: Ratio(0.5, 'A sample at or below this load figure is low; must be under LOAD_HIGH'),
  LOAD_RAISE_AFTER_MS: Ms(60_000, 'High samples for this long raise the interval once'),
  LOAD_LOWER_AFTER_MS: Ms(300_000, 'Low samples for this long lower the interval once'),
  LOAD_RAISE_FACTOR: Factor(1.5, 'A raise multiplies the interval by this'),
  LOAD_LOWER_FACTOR: Factor(1.25, 'A lowering divides the interval by this'),
  LOAD_LAG_TARGET_MS: Type.Integer({
    minimum: 1,
    maximum: 60_000,
    default: 100,
    description: "The event loop's p99 delay over a sample that counts as load 1",
  }),
  LOAD_QUEUE_TARGET: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 2000,
    description: 'Announces waiting on the store in this gateway that count as load 1',
  }),
  SHED_SEEDER_UPDATES_AT: Waiting(
    2000,
    'Announces waiting on the store at which seeder updates (no event, left=0) are shed; 0 never',
  ),
  SHED_LEECHER_UPDATES_AT: Waiting(
    4000,
    'The same for leecher updates (no event, left>0); 0 never',
  ),
  SHED_EVENTS_AT: Waiting(
    8000,
    'The same for started, completed and stopped: the bound of announces waiting; 0 never',
  ),
  SHED_INTERVAL_MIN_SECONDS: Type.Integer({
    minimum: 60,
    maximum: 10_800,
    default: 300,
    description:
      "A shed announce's `interval` is uniform between this and the current interval, so shed clients come back spread out",
  }),
});

export type LoadConfig = Readonly<Static<typeof loadConfigSchema>>;

export function checkLoadConfig(c: LoadConfig): Array<{ key: string; message: string }> {
  const problems: Array<{ key: string; message: string }> = [];
  if (c.LOAD_LOW >= c.LOAD_HIGH)
    problems.push({ key: 'LOAD_LOW', message: 'must be under LOAD_HIGH' });
  const order: Array<keyof LoadConfig> = [
    'SHED_SEEDER_UPDATES_AT',
    'SHED_LEECHER_UPDATES_AT',
    'SHED_EVENTS_AT',
  ];
  let previous: keyof LoadConfig | undefined;
  for (const key of order) {
    if (c[key] === 0) continue;
    if (previous !== undefined && c[key] < c[previous])
      problems.push({ key, message: `must not be under ${previous} (docs/load.md "Shedding")` });
    previous = key;
  }
  return problems;
}
