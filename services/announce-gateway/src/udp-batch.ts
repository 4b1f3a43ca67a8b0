// The optional native addon that batches the UDP tracker's system calls
// (recvmmsg/sendmmsg; docs/udp-batch.md). It is compiled at install by
// native/build.ts; when it is missing or will not load, the UDP tracker uses
// node:dgram and `why` says what went wrong.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The addon's functions (native/udp_batch.c). */
export interface UdpBatchAddon {
  /** Datagrams per recvmmsg/sendmmsg call. */
  readonly BATCH: number;
  open(host: string, port: number, reusePort: boolean, recvBufferBytes: number): UdpBatchHandle;
  start(handle: UdpBatchHandle, onReadable: () => void): void;
  arm(handle: UdpBatchHandle): void;
  ref(handle: UdpBatchHandle, ref: boolean): void;
  recv(handle: UdpBatchHandle, meta: Uint32Array): Buffer | undefined;
  send(handle: UdpBatchHandle, buf: Buffer, meta: Uint32Array, count: number): number;
  port(handle: UdpBatchHandle): number;
  recvBufferSize(handle: UdpBatchHandle): number;
  close(handle: UdpBatchHandle): void;
}

declare const handleBrand: unique symbol;
export type UdpBatchHandle = { readonly [handleBrand]: true };

/** Per datagram in a meta array: data offset, length, address offset, family, port. */
export const UDP_BATCH_META = 5;

export type UdpBatchLoad =
  { addon: UdpBatchAddon; why?: undefined } | { addon?: undefined; why: string };

const ADDON_URL = new URL('../native/build/udp_batch.node', import.meta.url);
const WHY_URL = new URL('../native/build/why.txt', import.meta.url);

let loaded: UdpBatchLoad | undefined;

/** The addon, loaded once per thread; `why` when it is not there or does not load. */
export function loadUdpBatch(): UdpBatchLoad {
  if (loaded !== undefined) return loaded;
  try {
    const addon = createRequire(import.meta.url)(ADDON_URL.pathname) as UdpBatchAddon;
    loaded = { addon };
  } catch (err) {
    let why = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    try {
      // The build's own reason (no compiler, no headers) says more than "cannot find module".
      why = readFileSync(WHY_URL, 'utf8').trim() || why;
    } catch {
      // no build record: the load error is the reason
    }
    loaded = { why };
  }
  return loaded;
}
