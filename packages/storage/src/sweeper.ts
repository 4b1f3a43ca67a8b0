// The periodic sweep of a store held in process memory, which no gc-worker
// reaches (docs/storage.md "Opening a store": `sweep`): one collectGarbage()
// at a time, its outcome told to onSweep, never keeping the process alive.
import type { GcResult } from './types.ts';

export type OnSweep = (result: GcResult | undefined, err?: unknown) => void;

/** Calls collect every everyMs until the returned timer is cleared. */
export function sweepEvery(
  collect: () => Promise<GcResult>,
  everyMs: number,
  onSweep: OnSweep | undefined,
): NodeJS.Timeout {
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    collect().then(
      (r) => {
        sweeping = false;
        onSweep?.(r);
      },
      (err: unknown) => {
        sweeping = false;
        onSweep?.(undefined, err);
      },
    );
  }, everyMs);
  timer.unref();
  return timer;
}
