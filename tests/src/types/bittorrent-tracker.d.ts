// The part of bittorrent-tracker's client that the interop tests use; the
// package ships no types and DefinitelyTyped has none for v11.
declare module 'bittorrent-tracker/client' {
  import { EventEmitter } from 'node:events';

  export interface ClientOptions {
    /** 40 hex chars or 20 bytes. */
    infoHash: string | Uint8Array;
    /** 40 hex chars or 20 bytes. */
    peerId: string | Uint8Array;
    announce: string | string[];
    port: number;
    getAnnounceOpts?: () => Record<string, unknown>;
    userAgent?: string;
    /** A WebRTC implementation; any object turns on ws:// trackers in Node (webrtc-tests replace the peers). */
    wrtc?: object | false;
  }

  export interface AnnounceOptions {
    uploaded?: number;
    downloaded?: number;
    left?: number;
    numwant?: number;
  }

  export interface UpdateEvent {
    announce: string;
    complete: number;
    incomplete: number;
    [key: string]: unknown;
  }

  export interface ScrapeEvent {
    announce: string;
    infoHash: string;
    complete: number;
    incomplete: number;
    downloaded: number;
  }

  export default class Client extends EventEmitter {
    constructor(opts: ClientOptions);
    readonly peerId: string;
    readonly infoHash: string;
    start(opts?: AnnounceOptions): void;
    stop(opts?: AnnounceOptions): void;
    complete(opts?: AnnounceOptions): void;
    update(opts?: AnnounceOptions): void;
    scrape(opts?: { infoHash?: string | string[] }): void;
    setInterval(intervalMs: number): void;
    destroy(cb?: (err: Error | null) => void): void;
    on(event: 'update', listener: (data: UpdateEvent) => void): this;
    on(event: 'peer', listener: (addr: string) => void): this;
    on(event: 'scrape', listener: (data: ScrapeEvent) => void): this;
    on(event: 'warning' | 'error', listener: (err: Error) => void): this;
  }
}
