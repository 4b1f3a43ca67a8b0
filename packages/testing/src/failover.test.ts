import { describe, expect, it } from 'vitest';
import { measureFailover } from './failover.ts';

describe('measureFailover', () => {
  it('counts recovery from when the fault has landed, however long injecting it takes', async () => {
    // The fault takes longer to inject than the steady run lasts (as a
    // sentinel lookup plus SIGKILL can on a loaded machine); the system then
    // fails for 300 ms. Successes before the fault landed are no recovery.
    let downUntil = 0;
    const report = await measureFailover({
      announce: async () => {
        await new Promise((r) => setTimeout(r, 5));
        if (performance.now() < downUntil) throw Object.assign(new Error('down'), { code: 'DOWN' });
      },
      fail: async () => {
        await new Promise((r) => setTimeout(r, 1500));
        downUntil = performance.now() + 300;
      },
      warmupMs: 100,
      steadyMs: 500,
      recoveryWindowMs: 10_000,
    });
    expect(report.errorsByCode.DOWN).toBeGreaterThan(0);
    expect(report.recoveredAfterMs).toBeGreaterThanOrEqual(250);
    expect(report.recoveredAfterMs).toBeLessThan(5000);
  });
});
