// @shoal/storage/ws: WebSocket (WebTorrent) peers and the relay of their
// offers and answers (docs/webtorrent.md "Design"), in process and on Redis.
// The gateway uses them embedded; storage-api runs them for the split topology.
export * from './swarms.ts';
export * from './redis.ts';
export * from './stream.ts';
