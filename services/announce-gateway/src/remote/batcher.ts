// Coalesces the storage operations of one event-loop tick into one request
// (docs/decisions.md "The split": announces arriving in the same tick leave
// as one batch).
// UDP datagrams and HTTP requests read in one poll phase are all submitted
// before setImmediate's check phase runs, so that is where a batch is cut.
// While every connection is busy, operations keep accumulating and go out in
// a bigger batch when one frees: the batch size adapts to the load.
import { StoreError, isStoreError, type StoreErrorCode } from '@shoal/storage';
import type { CircuitBreaker } from './breaker.ts';

export interface BatchTransport<Op, Result> {
  /** One request carrying `ops`; resolves with one result per op, in order. Aborted by `signal` on timeout. */
  send(ops: Op[], signal: AbortSignal): Promise<Result[]>;
}

/** Per operation: every submit() ends in exactly one of these (contract §4). */
export type ClientOutcome = 'ok' | 'error' | 'rejected_open_circuit' | 'queue_full' | 'timeout';

export interface BatcherMetrics {
  outcome(outcome: ClientOutcome, operations: number): void;
  /** One request sent: its size in operations and its duration. */
  request(operations: number, seconds: number): void;
}

export interface BatcherOptions<Result> {
  /** false: one operation per request, sent at once (the benchmark's comparison). */
  batching: boolean;
  maxOps: number;
  /** Operations waiting plus in flight. */
  queueMax: number;
  /** Deadline of an operation, from submit() to its result. */
  timeoutMs: number;
  /** Requests in flight at once (the connection pool's size). */
  maxInFlight: number;
  breaker: CircuitBreaker;
  /** false for a result that carries its own error (counted as 'error', not a transport failure). */
  resultOk?: (result: Result) => boolean;
  /**
   * Whether a failed request tells of an outage (the breaker counts it) or
   * was answered by a reachable server (it does not). Default: every failure
   * counts. A request that timed out always counts.
   */
  isOutage?: (err: unknown) => boolean;
  metrics?: BatcherMetrics;
}

interface Pending<Op, Result> {
  op: Op;
  submittedAt: number;
  resolve: (result: Result) => void;
  reject: (err: StoreError) => void;
}

export class Batcher<Op, Result> {
  readonly #transport: BatchTransport<Op, Result>;
  readonly #options: BatcherOptions<Result>;
  readonly #maxOps: number;
  #pending: Array<Pending<Op, Result>> = [];
  #inFlightRequests = 0;
  #inFlightOps = 0;
  #scheduled = false;
  #closed = false;
  #idle: (() => void) | undefined;
  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#drain();
  };

  constructor(transport: BatchTransport<Op, Result>, options: BatcherOptions<Result>) {
    this.#transport = transport;
    this.#options = options;
    this.#maxOps = options.batching ? options.maxOps : 1;
  }

  /** Operations waiting or in flight (shoal_storage_client_queue_depth). */
  get depth(): number {
    return this.#pending.length + this.#inFlightOps;
  }

  submit(op: Op): Promise<Result> {
    const { metrics, breaker } = this.#options;
    if (this.#closed)
      return Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'storage client closed'));
    if (this.depth >= this.#options.queueMax) {
      metrics?.outcome('queue_full', 1);
      return Promise.reject(
        new StoreError('STORE_ERR_UNAVAILABLE', 'too many storage operations waiting'),
      );
    }
    if (breaker.refusing()) {
      metrics?.outcome('rejected_open_circuit', 1);
      return Promise.reject(CIRCUIT_OPEN);
    }
    return new Promise<Result>((resolve, reject) => {
      this.#pending.push({ op, submittedAt: performance.now(), resolve, reject });
      if (!this.#options.batching || this.#pending.length >= this.#maxOps) this.#drain();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  /** Refuses new operations and resolves once the ones in flight have settled. */
  close(): Promise<void> {
    this.#closed = true;
    const waiting = this.#pending;
    this.#pending = [];
    for (const p of waiting)
      p.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'storage client closed'));
    if (this.#inFlightRequests === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idle = resolve;
    });
  }

  #drain(): void {
    while (this.#pending.length > 0 && this.#inFlightRequests < this.#options.maxInFlight) {
      let batch: Array<Pending<Op, Result>>;
      if (this.#pending.length <= this.#maxOps) {
        batch = this.#pending;
        this.#pending = [];
      } else {
        batch = this.#pending.splice(0, this.#maxOps);
      }
      this.#dispatch(batch);
    }
  }

  #dispatch(batch: Array<Pending<Op, Result>>): void {
    const { metrics, breaker, timeoutMs } = this.#options;
    const now = performance.now();
    // Operations that waited out their deadline behind busy connections are not worth sending.
    let live = batch;
    if (now - batch[0]!.submittedAt >= timeoutMs) {
      live = [];
      for (const p of batch) {
        if (now - p.submittedAt >= timeoutMs)
          p.reject(new StoreError('STORE_ERR_TIMEOUT', 'queued too long'));
        else live.push(p);
      }
      metrics?.outcome('timeout', batch.length - live.length);
      if (live.length === 0) return;
    }
    if (!breaker.tryAcquire()) {
      for (const p of live) p.reject(CIRCUIT_OPEN);
      metrics?.outcome('rejected_open_circuit', live.length);
      return;
    }
    const ops = live.map((p) => p.op);
    this.#inFlightRequests++;
    this.#inFlightOps += live.length;
    const controller = new AbortController();
    let timedOut = false;
    const remaining = Math.max(1, timeoutMs - (now - live[0]!.submittedAt));
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, remaining);
    this.#transport.send(ops, controller.signal).then(
      (results) => {
        clearTimeout(timer);
        breaker.success();
        this.#settled(live.length, now);
        const resultOk = this.#options.resultOk;
        let failed = 0;
        for (let i = 0; i < live.length; i++) {
          const result = results[i];
          if (result === undefined) {
            failed++;
            live[i]!.reject(
              new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api answered too few results'),
            );
            continue;
          }
          if (resultOk !== undefined && !resultOk(result)) failed++;
          live[i]!.resolve(result);
        }
        metrics?.outcome('ok', live.length - failed);
        if (failed > 0) metrics?.outcome('error', failed);
      },
      (err: unknown) => {
        clearTimeout(timer);
        // Answered, even with a refusal: the server is there, so the breaker hears a success.
        if (timedOut || (this.#options.isOutage?.(err) ?? true)) breaker.failure();
        else breaker.success();
        this.#settled(live.length, now);
        const code: StoreErrorCode = timedOut
          ? 'STORE_ERR_TIMEOUT'
          : isStoreError(err)
            ? err.code
            : 'STORE_ERR_UNAVAILABLE';
        const failure =
          isStoreError(err) && err.code === code
            ? err
            : new StoreError(code, undefined, { cause: err });
        for (const p of live) p.reject(failure);
        metrics?.outcome(timedOut ? 'timeout' : 'error', live.length);
      },
    );
  }

  #settled(operations: number, sentAt: number): void {
    this.#inFlightRequests--;
    this.#inFlightOps -= operations;
    this.#options.metrics?.request(operations, (performance.now() - sentAt) / 1000);
    if (this.#pending.length > 0) {
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    } else if (this.#inFlightRequests === 0 && this.#idle !== undefined) {
      this.#idle();
      this.#idle = undefined;
    }
  }
}

/** One shared error: refusing costs no allocation while storage-api is down. */
const CIRCUIT_OPEN = new StoreError(
  'STORE_ERR_UNAVAILABLE',
  'storage-api unreachable (circuit open)',
);
