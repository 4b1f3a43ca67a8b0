// The store as the simulation sees it (RELIABILITY.md "Simulation"): one
// first-in first-out server with a fixed service time per operation, behind
// the gateway's queue (REMOTE_QUEUE_MAX: operations waiting or in flight)
// and deadline (REMOTE_TIMEOUT_MS), with outages during which it answers
// nothing and what it held is lost.

export interface Outage {
  readonly start: number;
  readonly end: number;
}

export interface StoreOptions {
  /** Operations per second the store completes when busy. */
  readonly opsPerSecond: number;
  /** Operations waiting or in service past which a new one is refused at once. */
  readonly queueMax: number;
  /** An op not answered this long after it arrived fails; one sent before then still costs the store its work. */
  readonly timeoutSeconds: number;
  readonly outages: readonly Outage[];
}

/** What became of one operation handed to the store. */
export type Admission =
  | { readonly kind: 'refused'; readonly why: 'down' | 'full' }
  | {
      readonly kind: 'queued';
      /** When the gateway has its answer: the op's completion, its deadline, or the outage that lost it. */
      readonly answerAt: number;
      readonly ok: boolean;
      /** When the store applied the write, or undefined if an outage lost it. */
      readonly writtenAt: number | undefined;
    };

export class Store {
  readonly #options: StoreOptions;
  readonly #service: number;
  #freeAt = 0;
  #lastAdmit = 0;
  /** Completion times of the ops admitted and not yet done, in order. */
  #completions: number[] = [];
  #head = 0;

  constructor(options: StoreOptions) {
    this.#options = options;
    this.#service = 1 / options.opsPerSecond;
  }

  get options(): StoreOptions {
    return this.#options;
  }

  /** Seconds the store spends on one operation. */
  get serviceSeconds(): number {
    return this.#service;
  }

  down(t: number): boolean {
    return this.#options.outages.some((o) => t >= o.start && t < o.end);
  }

  /** The first outage that starts in (from, to], if any. */
  #outageStartingIn(from: number, to: number): Outage | undefined {
    return this.#options.outages.find((o) => o.start > from && o.start <= to);
  }

  /** Operations waiting or in service at `now`. */
  depth(now: number): number {
    while (this.#head < this.#completions.length && (this.#completions[this.#head] ?? 0) <= now) {
      this.#head++;
    }
    if (this.#head > 4096 && this.#head * 2 > this.#completions.length) {
      this.#completions = this.#completions.slice(this.#head);
      this.#head = 0;
    }
    return this.#completions.length - this.#head;
  }

  admit(now: number): Admission {
    if (this.down(now)) return { kind: 'refused', why: 'down' };
    if (this.#outageStartingIn(this.#lastAdmit, now) !== undefined) {
      // An outage came and went since the last op: it took the queue with it.
      this.#completions = [];
      this.#head = 0;
      this.#freeAt = now;
    }
    this.#lastAdmit = now;
    if (this.depth(now) >= this.#options.queueMax) return { kind: 'refused', why: 'full' };
    const start = Math.max(now, this.#freeAt);
    const deadline = now + this.#options.timeoutSeconds;
    if (start >= deadline) {
      // The gateway's batcher does not send an op that waited out its deadline
      // behind busy connections: it fails when its turn comes, at no cost to the store.
      this.#completions.push(start);
      return { kind: 'queued', answerAt: start, ok: false, writtenAt: undefined };
    }
    const done = start + this.#service;
    this.#freeAt = done;
    this.#completions.push(done);
    const lost = this.#outageStartingIn(now, done);
    if (lost !== undefined) {
      return {
        kind: 'queued',
        answerAt: Math.min(lost.start, deadline),
        ok: false,
        writtenAt: undefined,
      };
    }
    return done <= deadline
      ? { kind: 'queued', answerAt: done, ok: true, writtenAt: done }
      : { kind: 'queued', answerAt: deadline, ok: false, writtenAt: done };
  }
}
