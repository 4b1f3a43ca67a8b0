// Circuit breaker in front of storage-api: while it is unreachable
// every announce is refused at once ("retry later") instead of queueing up
// behind dead requests, and one probe at a time finds out when it is back.

export type CircuitState = 'closed' | 'half-open' | 'open';

/** Gauge values of shoal_storage_client_circuit_state (contract §4). */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitState, number>> = {
  closed: 0,
  'half-open': 1,
  open: 2,
};

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. */
  failures: number;
  /** Failed share of the last `window` outcomes that opens it too (1 disables). */
  failureRatio: number;
  window: number;
  /** Time spent open before a half-open probe. */
  openMs: number;
  clock?: () => number;
  onStateChange?: (to: CircuitState, from: CircuitState) => void;
}

export class CircuitBreaker {
  readonly #options: BreakerOptions;
  readonly #clock: () => number;
  #state: CircuitState = 'closed';
  #consecutive = 0;
  #openedAt = 0;
  #probing = false;
  /** Ring of the last `window` outcomes (1 = failure), for the ratio rule. */
  readonly #ring: Uint8Array;
  #ringPos = 0;
  #ringFilled = 0;
  #ringFailures = 0;

  constructor(options: BreakerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#ring = new Uint8Array(options.window);
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** True when tryAcquire() would say no: for refusing an operation before it is queued. */
  refusing(): boolean {
    if (this.#state === 'closed') return false;
    if (this.#state === 'open') return this.#clock() - this.#openedAt < this.#options.openMs;
    return this.#probing;
  }

  /**
   * May a request go out now? Open: no, until openMs has passed, then the
   * caller's request becomes the one half-open probe; half-open: no while the
   * probe is out.
   */
  tryAcquire(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (this.#clock() - this.#openedAt < this.#options.openMs) return false;
      this.#transition('half-open');
    }
    if (this.#probing) return false;
    this.#probing = true;
    return true;
  }

  success(): void {
    // Only the probe decides when an open circuit closes, not a late answer to an older request.
    if (this.#state === 'open') return;
    this.#consecutive = 0;
    if (this.#state === 'half-open') {
      this.#probing = false;
      this.#resetWindow();
      this.#transition('closed');
      return;
    }
    this.#record(0);
  }

  failure(): void {
    if (this.#state === 'half-open') {
      this.#probing = false;
      this.#open();
      return;
    }
    // Outcomes of requests sent before the circuit opened change nothing.
    if (this.#state === 'open') return;
    this.#consecutive++;
    this.#record(1);
    const { failures, failureRatio, window } = this.#options;
    if (
      this.#consecutive >= failures ||
      (failureRatio < 1 &&
        this.#ringFilled >= window &&
        this.#ringFailures >= failureRatio * window)
    ) {
      this.#open();
    }
  }

  #record(failed: 0 | 1): void {
    const ring = this.#ring;
    if (this.#ringFilled === ring.length) this.#ringFailures -= ring[this.#ringPos]!;
    else this.#ringFilled++;
    ring[this.#ringPos] = failed;
    this.#ringFailures += failed;
    this.#ringPos = (this.#ringPos + 1) % ring.length;
  }

  #resetWindow(): void {
    this.#ring.fill(0);
    this.#ringPos = 0;
    this.#ringFilled = 0;
    this.#ringFailures = 0;
  }

  #open(): void {
    this.#openedAt = this.#clock();
    this.#consecutive = 0;
    this.#transition('open');
  }

  #transition(to: CircuitState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#options.onStateChange?.(to, from);
  }
}
