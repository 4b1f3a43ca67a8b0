// What a frontend hands the tracker core, and what a step is
// (docs/architecture.md "The tracker core"). A frontend (HTTP, UDP) implements
// the context of one request; the core calls its methods in the order of its
// steps, each at most once, so a frontend decodes or resolves nothing that a
// refusal made unnecessary.
import type { AddressParam, AnnounceRequest, ScrapeCounts } from '@shoal/protocol';
import type { PeerAddress } from '../client-address.ts';

/** The steps in the order the core runs them, cheapest refusal first (docs/policy.md). */
export const STEP_ORDER = [
  'ban',
  'rate-limit',
  'passkey',
  'jwt',
  'client-approval',
  'torrent-approval',
  'hybrid-links',
  'jitter',
] as const;

export type StepName = (typeof STEP_ORDER)[number];

/** What announces and scrapes share. */
export interface RequestContext {
  /** Milliseconds since the epoch, read once per request. */
  readonly now: number;
  /** The sender's own address, never the `ip` parameter: what the rate limit counts. */
  source(): PeerAddress;
  /** The passkey of private mode (HTTP route, UDP BEP 41 URL data); undefined when absent. */
  passkey(): string | undefined;
}

export interface AnnounceContext extends RequestContext {
  /** Decodes the announce; called after the rate limit, so an over-limit client costs no parse. */
  request(): AnnounceRequest;
  /** Where the peer is reachable: source(), or the `ip` field where ALLOW_IP_PARAM lets it. */
  peer(request: AnnounceRequest): PeerAddress;
  /**
   * BEP 7: the peer's address of the other family (HTTP `ipv4`/`ipv6` where
   * ALLOW_IPV4_IPV6_PARAMS lets it), registered beside `peer` in the same
   * swarm; undefined when there is none. Throws a coded error for junk.
   * Frontends without such parameters (UDP) leave it out.
   */
  alsoAt?(request: AnnounceRequest, peer: PeerAddress): AddressParam | undefined;
  /** The JWT of private mode (HTTP `jwt` parameter, UDP BEP 41 URL data). */
  jwt(): string | undefined;
  /** Set by the core on success: the `interval` to answer, jitter included. */
  interval: number;
  /** Set by the core when the announce was shed (docs/load.md "Shedding"): its answer has no peers. */
  shed?: boolean;
}

export interface ScrapeContext extends RequestContext {
  /** Decodes the hashes; called after the scrape's checks. */
  infoHashes(): readonly Buffer[];
}

/** One line of a scrape answer; zeros where a step hides the torrent. */
export interface ScrapeFile extends ScrapeCounts {
  infoHash: Buffer;
}

/**
 * One concern of the tracker (a rate limit, an approval list, ...) and what
 * it does at each point of a request; a point it has nothing to do at is
 * left out. Refusals are thrown coded errors. The core runs the steps in
 * STEP_ORDER whatever order they are given in.
 */
export interface Step {
  readonly name: StepName;
  /** Announces and scrapes, before anything is decoded. */
  readonly admit?: (ctx: RequestContext) => void;
  /** UDP connects: false refuses. */
  readonly connect?: (peer: PeerAddress, nowMs: number) => boolean;
  /** UDP packets before they are decoded: true drops the packet unanswered (a banned source). */
  readonly drops?: (source: PeerAddress, nowMs: number) => boolean;
  /** A bad packet from `source` (a bad connection id, junk): abuse control counts it. */
  readonly strike?: (
    source: PeerAddress,
    reason: 'bad_connection_id' | 'malformed',
    nowMs: number,
  ) => void;
  /** Announces, once decoded. */
  readonly announce?: (ctx: AnnounceContext, request: AnnounceRequest) => void;
  /** Announces, once decoded, for a step that has to wait (JWT keys): no announce is synchronous then. */
  readonly announceAsync?: (ctx: AnnounceContext, request: AnnounceRequest) => Promise<void>;
  /** Scrapes, before the hashes are decoded: refuses the whole scrape. */
  readonly scrape?: (ctx: ScrapeContext) => void;
  /** Scrapes: true when this hash answers zeros instead of its counts (docs/policy.md). */
  readonly hides?: (infoHash: Buffer) => boolean;
  /** Announces and scrapes, after every check: the swarm a hash's peers live in (docs/policy.md "Hybrid torrents"). */
  readonly swarm?: (infoHash: Buffer) => Buffer;
  /** Announce answers: the interval to send instead of `seconds`. */
  readonly interval?: (seconds: number) => number;
}
