// Locks in shared memory for the shared-memory store (docs/decisions.md
// "Shared-memory store"). A lock word holds 0 when free, otherwise the owner
// id of the holder; the word after it counts the threads sleeping on it.
//
// Every attached store is an owner with an id of its own, recorded in the
// owner table with its thread id. A thread that dies holding a lock (a
// worker terminated or out of memory in the middle of an announce) cannot
// unlock, so the thread that watches workers declares its owners dead
// (ownersExited); a waiter that finds a dead owner on the word takes the
// lock over and tells its caller, who repairs what the dead owner may have
// left half done. A live owner is never robbed: a waiter sleeps in bounded
// Atomics.wait steps and gives up with STORE_ERR_UNAVAILABLE after
// `timeoutMs`.
import { StoreError } from '../errors.ts';
import { OWNER_CLOSED, OWNER_DEAD, OWNER_LIVE, OWNER_WORDS, O_STATE, O_THREAD } from './layout.ts';

/** Tries before a waiter sleeps: a critical section lasts a microsecond or two. */
const SPINS = 100;
/** Longest single sleep: how soon a waiter notices that the holder was declared dead. */
const WAIT_STEP_MS = 20;

export class Locks {
  readonly #ctl: Int32Array;
  readonly #ownerBase: number;
  readonly #me: number;
  readonly #timeoutMs: number;

  constructor(ctl: Int32Array, ownerBase: number, me: number, timeoutMs: number) {
    this.#ctl = ctl;
    this.#ownerBase = ownerBase;
    this.#me = me;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Takes the lock at word `w`. Returns true when it was taken over from a
   * dead owner: the data it guards may be half updated.
   */
  acquire(w: number): boolean {
    const ctl = this.#ctl;
    if (Atomics.compareExchange(ctl, w, 0, this.#me) === 0) return false;
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(ctl, w) === 0 && Atomics.compareExchange(ctl, w, 0, this.#me) === 0)
        return false;
    }
    Atomics.add(ctl, w + 1, 1);
    try {
      const deadline = Date.now() + this.#timeoutMs;
      for (;;) {
        const holder = Atomics.load(ctl, w);
        if (holder === 0) {
          if (Atomics.compareExchange(ctl, w, 0, this.#me) === 0) return false;
          continue;
        }
        if (this.isDead(holder)) {
          if (Atomics.compareExchange(ctl, w, holder, this.#me) === holder) return true;
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0)
          throw new StoreError(
            'STORE_ERR_UNAVAILABLE',
            `shared-memory store: a lock stayed held for over ${this.#timeoutMs} ms`,
          );
        Atomics.wait(ctl, w, holder, Math.min(left, WAIT_STEP_MS));
      }
    } finally {
      Atomics.sub(ctl, w + 1, 1);
    }
  }

  release(w: number): void {
    const ctl = this.#ctl;
    Atomics.store(ctl, w, 0);
    if (Atomics.load(ctl, w + 1) > 0) Atomics.notify(ctl, w, 1);
  }

  isDead(owner: number): boolean {
    return Atomics.load(this.#ctl, this.#ownerBase + owner * OWNER_WORDS + O_STATE) === OWNER_DEAD;
  }
}

/** Registers a new owner for `threadId`; throws STORE_ERR_CONFIG when the table is full. */
export function registerOwner(
  ctl: Int32Array,
  nextOwnerWord: number,
  maxOwners: number,
  ownerBase: number,
  threadId: number,
): number {
  const id = Atomics.add(ctl, nextOwnerWord, 1) + 1;
  if (id > maxOwners)
    throw new StoreError(
      'STORE_ERR_CONFIG',
      `shared-memory store: more than ${maxOwners} attachments over its life (maxOwners)`,
    );
  Atomics.store(ctl, ownerBase + id * OWNER_WORDS + O_THREAD, threadId);
  Atomics.store(ctl, ownerBase + id * OWNER_WORDS + O_STATE, OWNER_LIVE);
  return id;
}

export function closeOwner(ctl: Int32Array, ownerBase: number, id: number): void {
  Atomics.compareExchange(ctl, ownerBase + id * OWNER_WORDS + O_STATE, OWNER_LIVE, OWNER_CLOSED);
}

/**
 * Declares every live owner of `threadId` dead and wakes the waiters of
 * `lockWords` so they take over what it held. Only for a thread that has
 * exited: a dead owner's locks are taken from it. Returns how many owners.
 */
export function ownersExited(
  ctl: Int32Array,
  nextOwnerWord: number,
  ownerBase: number,
  threadId: number,
  lockWords: readonly number[],
): number {
  const last = Math.min(
    Atomics.load(ctl, nextOwnerWord),
    (ctl.length - ownerBase) / OWNER_WORDS - 1,
  );
  let n = 0;
  for (let id = 1; id <= last; id++) {
    const base = ownerBase + id * OWNER_WORDS;
    if (Atomics.load(ctl, base + O_THREAD) !== threadId) continue;
    if (Atomics.compareExchange(ctl, base + O_STATE, OWNER_LIVE, OWNER_DEAD) === OWNER_LIVE) n++;
  }
  if (n > 0) for (const w of lockWords) Atomics.notify(ctl, w);
  return n;
}
