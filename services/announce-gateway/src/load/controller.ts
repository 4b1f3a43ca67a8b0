// The load-adaptive interval's rule, exactly as docs/load.md "The controller"
// states it: raise by a factor after a full window of high samples, lower by
// a factor after a full window of low samples, stay within the bounds. Pure:
// time and load arrive as arguments, so a test (and the simulation in
// bench/) can drive it sample by sample.

export interface IntervalControllerOptions {
  /** ANNOUNCE_INTERVAL_SECONDS: where the interval starts and the floor it comes back to. */
  baseSeconds: number;
  /** ANNOUNCE_INTERVAL_MAX_SECONDS; at or below the base the interval never moves. */
  maxSeconds: number;
  high: number;
  low: number;
  raiseAfterMs: number;
  lowerAfterMs: number;
  raiseFactor: number;
  lowerFactor: number;
}

export class IntervalController {
  readonly #o: IntervalControllerOptions;
  readonly #max: number;
  #interval: number;
  #highSince: number | undefined;
  #lowSince: number | undefined;

  constructor(options: IntervalControllerOptions) {
    this.#o = options;
    this.#max = Math.max(options.baseSeconds, options.maxSeconds);
    this.#interval = options.baseSeconds;
  }

  /** The current interval before jitter. */
  get intervalSeconds(): number {
    return this.#interval;
  }

  /**
   * One sample of the load figure at `nowMs`. `pinned` keeps the interval at
   * its base (a storage-api that cannot keep peers for a longer promise).
   */
  sample(nowMs: number, load: number, pinned = false): number {
    const o = this.#o;
    if (pinned) {
      this.#interval = o.baseSeconds;
      this.#highSince = undefined;
      this.#lowSince = undefined;
    } else if (load >= o.high) {
      this.#lowSince = undefined;
      this.#highSince ??= nowMs;
      if (nowMs - this.#highSince >= o.raiseAfterMs) {
        this.#interval = Math.min(this.#max, Math.round(this.#interval * o.raiseFactor));
        this.#highSince = nowMs;
      }
    } else if (load <= o.low) {
      this.#highSince = undefined;
      this.#lowSince ??= nowMs;
      if (nowMs - this.#lowSince >= o.lowerAfterMs) {
        this.#interval = Math.max(o.baseSeconds, Math.round(this.#interval / o.lowerFactor));
        this.#lowSince = nowMs;
      }
    } else {
      this.#highSince = undefined;
      this.#lowSince = undefined;
    }
    return this.#interval;
  }
}

/**
 * The interval one answer carries (docs/load.md "The interval a client is
 * told"): the current interval plus a uniform 0..spread, where the spread is
 * the operator's jitter or a tenth of the raise, whichever is larger.
 */
export function jitteredInterval(
  current: number,
  baseSeconds: number,
  maxSeconds: number,
  jitterSeconds: number,
  random: () => number = Math.random,
): number {
  const spread = Math.max(jitterSeconds, Math.floor((current - baseSeconds) / 10));
  const told = current + Math.floor(random() * (spread + 1));
  // The ceiling bounds the adaptive part only: a base already above it keeps the operator's jitter.
  return current > baseSeconds ? Math.min(Math.max(baseSeconds, maxSeconds), told) : told;
}
