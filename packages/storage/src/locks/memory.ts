// In-process lease lock: for a single storage-api with the memory data store,
// and for tests that move time.
import { StoreError } from '../errors.ts';
import { checkLeaseArgs, type LeaseLock, type LeaseState } from './types.ts';

export function createMemoryLeaseLock(clock: () => number = Date.now): LeaseLock {
  const leases = new Map<string, { holder: string; expiresAt: number }>();
  let closed = false;
  const refusal = (name: string, holder: string, ttlMs?: number): StoreError | undefined => {
    if (closed) return new StoreError('STORE_ERR_UNAVAILABLE', 'lease lock closed');
    const problem = checkLeaseArgs(name, holder, ttlMs);
    return problem === undefined ? undefined : new StoreError('STORE_ERR_BAD_INPUT', problem);
  };
  return {
    acquire(name, holder, ttlMs): Promise<LeaseState> {
      const refused = refusal(name, holder, ttlMs);
      if (refused !== undefined) return Promise.reject(refused);
      const now = clock();
      const cur = leases.get(name);
      if (cur === undefined || cur.expiresAt <= now || cur.holder === holder) {
        const expiresAt = now + ttlMs;
        leases.set(name, { holder, expiresAt });
        return Promise.resolve({ held: true, holder, expiresAt });
      }
      return Promise.resolve({ held: false, holder: cur.holder, expiresAt: cur.expiresAt });
    },
    release(name, holder): Promise<boolean> {
      const refused = refusal(name, holder);
      if (refused !== undefined) return Promise.reject(refused);
      const cur = leases.get(name);
      if (cur === undefined || cur.holder !== holder) return Promise.resolve(false);
      leases.delete(name);
      return Promise.resolve(cur.expiresAt > clock());
    },
    close() {
      closed = true;
      leases.clear();
      return Promise.resolve();
    },
  };
}
