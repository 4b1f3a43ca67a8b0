import { describe, expect, it } from 'vitest';
import { isStoreError } from '@shoal/storage';
import { Batcher, type BatchTransport } from './batcher.ts';
import { CircuitBreaker } from './breaker.ts';

/** A transport whose requests the test answers by hand. */
class ManualTransport implements BatchTransport<number, number> {
  readonly sent: number[][] = [];
  readonly #answers: Array<(fail?: boolean) => void> = [];
  /** Like a peer that keeps a request past its deadline: the answer decides. */
  ignoreAbort = false;

  send(ops: number[], signal: AbortSignal): Promise<number[]> {
    this.sent.push(ops);
    return new Promise((resolve, reject) => {
      if (!this.ignoreAbort) signal.addEventListener('abort', () => reject(new Error('aborted')));
      this.#answers.push((fail) =>
        fail ? reject(new Error('connection reset')) : resolve(ops.map((n) => n * 10)),
      );
    });
  }

  /** Answers the oldest unanswered request. */
  answer(fail = false): void {
    this.#answers.shift()?.(fail);
  }
}

function batcher(
  transport: ManualTransport,
  overrides: { maxInFlight?: number; timeoutMs?: number } = {},
) {
  return new Batcher<number, number>(transport, {
    batching: true,
    maxOps: 100,
    queueMax: 1000,
    timeoutMs: overrides.timeoutMs ?? 5000,
    maxInFlight: overrides.maxInFlight ?? 1,
    breaker: new CircuitBreaker({ failures: 3, failureRatio: 1, window: 10, openMs: 1000 }),
  });
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('while every connection is busy, the operations of later ticks wait and leave as one bigger batch', async () => {
    const transport = new ManualTransport();
    const b = batcher(transport, { maxInFlight: 1 });
    const first = b.submit(1);
    await tick();
    const later = [b.submit(2), b.submit(3)];
    await tick();
    later.push(b.submit(4));
    await tick();
    expect(transport.sent).toEqual([[1]]);
    expect(b.depth).toBe(4);
    transport.answer();
    expect(await first).toBe(10);
    await tick();
    expect(transport.sent).toEqual([[1], [2, 3, 4]]);
    transport.answer();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
    expect(b.depth).toBe(0);
  });

  it('a request past its deadline fails with STORE_ERR_TIMEOUT', async () => {
    const transport = new ManualTransport();
    const b = batcher(transport, { timeoutMs: 20 });
    const err = await b.submit(1).catch((e: unknown) => e);
    expect(isStoreError(err) && err.code).toBe('STORE_ERR_TIMEOUT');
  });

  it('operations that outwaited their deadline in the queue fail with STORE_ERR_TIMEOUT unsent', async () => {
    const transport = new ManualTransport();
    transport.ignoreAbort = true;
    const b = batcher(transport, { maxInFlight: 1, timeoutMs: 20 });
    const first = b.submit(1);
    await tick();
    const queued = b.submit(2).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 40));
    transport.answer();
    expect(await first).toBe(10);
    const late = await queued;
    expect(isStoreError(late) && late.code).toBe('STORE_ERR_TIMEOUT');
    expect(transport.sent).toEqual([[1]]);
  });

  it('a failed request fails each of its operations and nothing else', async () => {
    const transport = new ManualTransport();
    const b = batcher(transport, { maxInFlight: 2 });
    const a = [b.submit(1), b.submit(2)].map((p) => p.catch((err: unknown) => err));
    await tick();
    const c = b.submit(3);
    await tick();
    transport.answer(true);
    transport.answer();
    for (const err of await Promise.all(a))
      expect(isStoreError(err) && err.code).toBe('STORE_ERR_UNAVAILABLE');
    expect(await c).toBe(30);
  });

  it('close() refuses new work and waits for requests in flight', async () => {
    const transport = new ManualTransport();
    const b = batcher(transport);
    const inFlight = b.submit(5);
    await tick();
    let closed = false;
    const closing = b.close().then(() => (closed = true));
    await expect(b.submit(6)).rejects.toMatchObject({ code: 'STORE_ERR_UNAVAILABLE' });
    await tick();
    expect(closed).toBe(false);
    transport.answer();
    expect(await inFlight).toBe(50);
    await closing;
    expect(closed).toBe(true);
  });
});
