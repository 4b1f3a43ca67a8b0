// The shared-memory store's DataStore (approval lists, passkeys, bans): an
// append-only log of puts and deletes in the `kv` buffer, under one lock.
// Each thread keeps the log replayed into Maps and, before every operation,
// replays what other threads appended since. KV operations are rare (an
// admin change, a ban, a policy revision read per refresh), so one lock for
// all of it costs nothing on the announce path.
//
// The log is a segment: a length word, then records. A record is only seen
// once the length word covers it, and a compaction writes the live entries
// as a new segment beside the old one before switching H_KV_SEG, so a thread
// that dies at any point leaves a log every other thread can still read.
import { Buffer } from 'node:buffer';
import { H_KV_GARBAGE, H_KV_GEN, H_KV_LOCK, H_KV_SEG, growTo } from './layout.ts';
import type { Locks } from './lock.ts';

const OP_PUT = 1;
const OP_DELETE = 2;
const RECORD_HEADER = 16;
/** Superseded bytes tolerated before a compaction (and at least as many as live ones). */
const COMPACT_FROM_BYTES = 64 << 10;

const align = (n: number, to: number): number => Math.ceil(n / to) * to;

export class SharedKv {
  readonly #sab: SharedArrayBuffer;
  readonly #ctl: Int32Array;
  readonly #locks: Locks;
  readonly #i32: Int32Array;
  #seg = -1;
  #gen = -1;
  /** Bytes of the current segment already replayed into #data. */
  #pos = 0;
  readonly #data = new Map<string, Map<string, string>>();

  constructor(sab: SharedArrayBuffer, ctl: Int32Array, locks: Locks) {
    this.#sab = sab;
    this.#ctl = ctl;
    this.#locks = locks;
    this.#i32 = new Int32Array(sab);
  }

  get(context: string, key: string): string | undefined {
    return this.#locked(() => this.#data.get(context)?.get(key));
  }

  list(context: string): Array<[string, string]> {
    const entries = this.#locked(() => [...(this.#data.get(context) ?? [])]);
    // UTF-16 code unit order, like the memory driver.
    return entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  }

  put(context: string, key: string, value: string): void {
    this.#locked(() => {
      const old = this.#data.get(context)?.get(key);
      this.#append(OP_PUT, context, key, value);
      if (old !== undefined) this.#addGarbage(recordBytes(context, key, old));
      this.#maybeCompact();
    });
  }

  delete(context: string, key: string): boolean {
    return this.#locked(() => {
      const old = this.#data.get(context)?.get(key);
      if (old === undefined) return false;
      this.#append(OP_DELETE, context, key, '');
      this.#addGarbage(recordBytes(context, key, old) + recordBytes(context, key, ''));
      this.#maybeCompact();
      return true;
    });
  }

  #locked<T>(fn: () => T): T {
    // The log is valid at every step (see the header), so a lock taken over needs no repair.
    this.#locks.acquire(H_KV_LOCK);
    try {
      this.#catchUp();
      return fn();
    } finally {
      this.#locks.release(H_KV_LOCK);
    }
  }

  #catchUp(): void {
    const seg = Atomics.load(this.#ctl, H_KV_SEG);
    const gen = Atomics.load(this.#ctl, H_KV_GEN);
    if (seg !== this.#seg || gen !== this.#gen) {
      this.#data.clear();
      this.#seg = seg;
      this.#gen = gen;
      this.#pos = 0;
    }
    const len = this.#i32[seg >>> 2]!;
    while (this.#pos < len) this.#pos += this.#replay(seg + 4 + this.#pos);
  }

  /** Applies the record at byte `at` to #data and returns its size. */
  #replay(at: number): number {
    const i = at >>> 2;
    const op = this.#i32[i]!;
    const cLen = this.#i32[i + 1]!;
    const kLen = this.#i32[i + 2]!;
    const vLen = this.#i32[i + 3]!;
    const bytes = Buffer.from(this.#sab, at + RECORD_HEADER, cLen + kLen + vLen);
    const context = bytes.toString('utf8', 0, cLen);
    const key = bytes.toString('utf8', cLen, cLen + kLen);
    if (op === OP_PUT) {
      let entries = this.#data.get(context);
      if (entries === undefined) {
        entries = new Map();
        this.#data.set(context, entries);
      }
      entries.set(key, bytes.toString('utf8', cLen + kLen));
    } else {
      const entries = this.#data.get(context);
      entries?.delete(key);
      if (entries?.size === 0) this.#data.delete(context);
    }
    return align(RECORD_HEADER + cLen + kLen + vLen, 4);
  }

  #append(op: number, context: string, key: string, value: string): void {
    const seg = this.#seg;
    const at = seg + 4 + this.#pos;
    const size = recordBytes(context, key, value);
    this.#ensure(at + size);
    this.#write(at, op, context, key, value);
    // Published only now: a thread dying above leaves the log as it was.
    Atomics.store(this.#i32, seg >>> 2, this.#pos + size);
    this.#replay(at);
    this.#pos += size;
  }

  #write(at: number, op: number, context: string, key: string, value: string): void {
    const view = Buffer.from(this.#sab, at + RECORD_HEADER, this.#sab.byteLength - at - 16);
    const cLen = view.write(context, 0, 'utf8');
    const kLen = view.write(key, cLen, 'utf8');
    const vLen = view.write(value, cLen + kLen, 'utf8');
    const i = at >>> 2;
    this.#i32[i] = op;
    this.#i32[i + 1] = cLen;
    this.#i32[i + 2] = kLen;
    this.#i32[i + 3] = vLen;
  }

  #ensure(end: number): void {
    growTo(this.#sab, end, 1 << 16, 'KV data');
  }

  #addGarbage(bytes: number): void {
    Atomics.add(this.#ctl, H_KV_GARBAGE, bytes);
  }

  #maybeCompact(): void {
    const garbage = Atomics.load(this.#ctl, H_KV_GARBAGE);
    if (garbage < COMPACT_FROM_BYTES || garbage < this.#pos - garbage) return;
    let live = 0;
    for (const [context, entries] of this.#data)
      for (const [key, value] of entries) live += recordBytes(context, key, value);
    // Beside the old segment, never over it: before it when it fits there.
    const next = live + 4 <= this.#seg ? 0 : align(this.#seg + 4 + this.#pos, 8);
    this.#ensure(next + 4 + live);
    let at = next + 4;
    for (const [context, entries] of this.#data)
      for (const [key, value] of entries) {
        this.#write(at, OP_PUT, context, key, value);
        at += recordBytes(context, key, value);
      }
    Atomics.store(this.#i32, next >>> 2, live);
    Atomics.store(this.#ctl, H_KV_SEG, next);
    Atomics.add(this.#ctl, H_KV_GEN, 1);
    Atomics.store(this.#ctl, H_KV_GARBAGE, 0);
    this.#seg = next;
    this.#gen = Atomics.load(this.#ctl, H_KV_GEN);
    this.#pos = live;
  }
}

function recordBytes(context: string, key: string, value: string): number {
  return align(
    RECORD_HEADER +
      Buffer.byteLength(context, 'utf8') +
      Buffer.byteLength(key, 'utf8') +
      Buffer.byteLength(value, 'utf8'),
    4,
  );
}
