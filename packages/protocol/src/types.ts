// Wire-level types shared by every Shoal service. The codecs in this package
// produce and consume these; nothing here does I/O.

/** BEP 15 event numbering: none=0, completed=1, started=2, stopped=3. HTTP uses the names. */
export type AnnounceEvent = 'none' | 'completed' | 'started' | 'stopped';

/** IP address family of a peer or a packet. Swarms keep the two apart. */
export type Family = 4 | 6;

/**
 * One announce as the gateway hands it to a store, validated and resolved:
 * to a driver in process, or to storage-api in the batch body
 * (storage-rpc.ts), which carries exactly these fields.
 */
export interface PeerAnnounce {
  /** 20 bytes. */
  infoHash: Buffer;
  /** 20 bytes. */
  peerId: Buffer;
  family: Family;
  /** 4 bytes for family 4, 16 bytes for family 6. */
  address: Buffer;
  /** 0..65535. */
  port: number;
  /** left == 0, or event completed. */
  seeder: boolean;
  /**
   * A BEP 21 partial seed (HTTP `event=paused`, not a seeder): counted among
   * the leechers but apart from them, and given leechers only, as a seeder is
   * (docs/decisions.md "Client features beyond BEP 3"). Absent: false.
   */
  partialSeed?: boolean;
  event: AnnounceEvent;
  /** How many peers to return (0..65535), already defaulted and capped by the gateway (0 allowed). */
  numWant: number;
  /** Return the sampled peers' peer_ids too (non-compact HTTP responses). */
  withPeerIds: boolean;
  /**
   * Seconds to keep this peer: the interval it was promised plus grace
   * (docs/load.md "Peer expiry follows the promise"). Absent: the store's
   * own peer lifetime. A positive integer.
   */
  lifetimeSeconds?: number;
  /**
   * PEER_KEY_HASH_SIZE bytes naming the client by its peer_id and `key`
   * (never the key itself): a store moves the entry last announced with the
   * same hash to this announce's address (docs/decisions.md "Peers that
   * move"). Absent: the announce had no key, and moves nothing.
   */
  keyHash?: Buffer;
}

/** Bytes of PeerAnnounce.keyHash. */
export const PEER_KEY_HASH_SIZE = 8;

/** One announce as a client sent it, over HTTP (BEP 3/23) or UDP (BEP 15). */
export interface AnnounceRequest {
  /** 20 raw bytes. */
  infoHash: Buffer;
  /** 20 raw bytes. */
  peerId: Buffer;
  /** 0..65535 (0 is accepted on the wire; the gateway decides what it means). */
  port: number;
  uploaded: bigint;
  downloaded: bigint;
  left: bigint;
  event: AnnounceEvent;
  /** undefined when the client did not say (HTTP: absent; UDP: -1). */
  numWant: number | undefined;
  /** HTTP `compact` (default true); always true for UDP. */
  compact: boolean;
  /** HTTP `no_peer_id=1`. */
  noPeerId: boolean;
  /** HTTP `event=paused` (BEP 21 partial seed); `event` is then none. UDP has no such event: always false. */
  paused?: boolean;
  /** HTTP `key` / UDP key, when given. */
  key: string | undefined;
  /** HTTP `ip` parameter or UDP's IPv4 field when non-zero, as text; only honoured when config allows. */
  ip: string | undefined;
  /**
   * HTTP `ipv4` / `ipv6` (BEP 7), first occurrence, as sent (still
   * percent-encoded): parseAddressParam decodes and reads them. Absent from
   * UDP. Only honoured when config allows.
   */
  ipv4?: string | undefined;
  ipv6?: string | undefined;
}

export interface ScrapeCounts {
  /** seeders */
  complete: number;
  /** leechers, BEP 21 partial seeds included */
  incomplete: number;
  downloaded: number;
  /** BEP 21: leechers that are not partial seeds. HTTP scrapes send it; UDP's layout has no room. */
  downloaders?: number;
}
