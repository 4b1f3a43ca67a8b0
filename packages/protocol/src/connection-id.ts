// Stateless UDP connection ids (BEP 15 "connect"): any gateway replica that
// holds the shared secret can verify an id another replica issued, so a
// client may connect on one and announce on another (docs/decisions.md "Tracker semantics").
//
// Layout, 8 bytes: issue time (uint32 seconds since the epoch, wraps in 2106;
// age arithmetic is modulo 2^32) followed by 32 bits of
// SipHash-2-4(key, issue time || client address), key = the first 16 bytes
// of SHA-256(secret). Verify is one keyed hash plus an age check. SipHash is
// a PRF made for short inputs (hash-table and packet authentication); on
// these 8-20 byte inputs it measured ~0.2 us per call against ~1.2 us for a
// one-shot crypto.hash and ~17 us for createHmac on the same loaded machine
// (docs/decisions.md "Sources": createHmac costs about a third of a UDP echo's
// throughput).
// 32 bits make a blind forgery a 1-in-4-billion guess per packet, which is
// all BEP 15 asks of an id: proof that the client receives traffic at its
// source address.
//
// The address is the client's IP only (4 or 16 bytes from addressToBytes, so
// an IPv4 client looks the same on a dual-stack socket), not its port: NATs
// may move the port between connect and announce.
import { hash } from 'node:crypto';
import { ProtocolError } from './errors.ts';
import { sipHash24, sipKey } from './siphash.ts';
import type { SipKey } from './siphash.ts';

export interface ConnectionIdOptions {
  /** Shared by every replica (a Kubernetes Secret); at least 16 bytes. */
  secret: Buffer;
  /** Ids older than this are refused. Clients reuse ids for minutes (chihaya#417): be lenient. */
  maxAgeSeconds: number;
  /** Ids stamped up to this far in the future are accepted (replica clock skew). Default 30. */
  maxFutureSkewSeconds?: number;
}

export const CONNECTION_ID_SIZE = 8;
const MIN_SECRET_BYTES = 16;
const DEFAULT_FUTURE_SKEW_SECONDS = 30;

export class ConnectionIdCodec {
  readonly #key: SipKey;
  readonly #maxAge: number;
  readonly #maxSkew: number;
  /** time || address, rewritten per call (calls are synchronous). */
  readonly #input = Buffer.alloc(4 + 16);
  readonly #inputV4 = this.#input.subarray(0, 4 + 4);
  readonly #inputV6 = this.#input.subarray(0, 4 + 16);
  readonly #digest = new Uint32Array(2);

  constructor(opts: ConnectionIdOptions) {
    if (opts.secret.length < MIN_SECRET_BYTES) {
      throw new ProtocolError(
        'PROTO_ERR_BAD_CONFIG',
        `secret needs at least ${MIN_SECRET_BYTES} bytes`,
      );
    }
    const maxSkew = opts.maxFutureSkewSeconds ?? DEFAULT_FUTURE_SKEW_SECONDS;
    if (
      !Number.isInteger(opts.maxAgeSeconds) ||
      opts.maxAgeSeconds < 0 ||
      opts.maxAgeSeconds > 0x7fffffff
    ) {
      throw new ProtocolError(
        'PROTO_ERR_BAD_CONFIG',
        'maxAgeSeconds must be a non-negative integer',
      );
    }
    if (!Number.isInteger(maxSkew) || maxSkew < 0 || maxSkew > 0x7fffffff) {
      throw new ProtocolError(
        'PROTO_ERR_BAD_CONFIG',
        'maxFutureSkewSeconds must be a non-negative integer',
      );
    }
    // Hashing folds a secret of any length into SipHash's 128-bit key.
    this.#key = sipKey(hash('sha256', opts.secret, 'buffer').subarray(0, 16));
    this.#maxAge = opts.maxAgeSeconds;
    this.#maxSkew = maxSkew;
  }

  /** An 8-byte id for `address` (4 or 16 bytes) at `nowMs`. */
  issue(address: Buffer, nowMs: number): Buffer {
    const time = Math.floor(nowMs / 1000) >>> 0;
    const id = Buffer.allocUnsafe(CONNECTION_ID_SIZE);
    id.writeUInt32BE(time, 0);
    id.writeUInt32BE(this.#mac(time, address), 4);
    return id;
  }

  /** True when `id` was issued to `address` by a holder of the secret, within the accepted age. */
  verify(id: Buffer, address: Buffer, nowMs: number): boolean {
    if (id.length !== CONNECTION_ID_SIZE) return false;
    const time = id.readUInt32BE(0);
    // Signed difference modulo 2^32: negative means stamped in the future.
    const age = ((Math.floor(nowMs / 1000) >>> 0) - time) | 0;
    if (age > this.#maxAge || age < -this.#maxSkew) return false;
    return id.readUInt32BE(4) === this.#mac(time, address);
  }

  #mac(time: number, address: Buffer): number {
    const input = this.#input;
    input.writeUInt32BE(time, 0);
    const n = address.copy(input, 4, 0, 16);
    const data = n === 4 ? this.#inputV4 : n === 16 ? this.#inputV6 : input.subarray(0, 4 + n);
    sipHash24(this.#key, data, this.#digest);
    return this.#digest[1] as number;
  }
}
