// How a Redis call fails, the same for the store and the lease lock: a coded
// StoreError, and STORE_ERR_TIMEOUT when no answer comes in time.
import { StoreError, isStoreError } from '../errors.ts';

export function toStoreError(err: unknown): StoreError {
  if (isStoreError(err)) return err;
  return new StoreError('STORE_ERR_UNAVAILABLE', err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new StoreError('STORE_ERR_TIMEOUT', `no answer from Redis within ${ms} ms`)),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(toStoreError(e));
      },
    );
  });
}
