// The part of bittorrent-tracker's server that the WebTorrent tests and the
// WebSocket benchmark run as the reference tracker; the package ships no types.
declare module 'bittorrent-tracker/server' {
  import { EventEmitter } from 'node:events';
  import type { AddressInfo } from 'node:net';

  export interface ServerOptions {
    /** Announce interval the server tells clients, in ms. */
    interval?: number;
    http?: boolean | object;
    udp?: boolean | object;
    ws?: boolean | object;
    stats?: boolean;
  }

  export default class Server extends EventEmitter {
    constructor(opts?: ServerOptions);
    readonly ws: { address(): AddressInfo | string | null } | null;
    listen(port: number, hostname: string, cb?: () => void): void;
    close(cb?: (err?: Error | null) => void): void;
  }
}
