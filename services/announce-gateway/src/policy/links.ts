// Learning the links of hybrid torrents from the clients themselves
// (docs/policy.md "Hybrid torrents"). libtorrent announces a hybrid torrent
// once per hash, back to back, with the same peer_id and `key` (one torrent
// object makes both requests), so two hashes from one (peer_id, key, address,
// port) within a short window are very likely the v1 and v2 hashes of one
// torrent. A third hash from the same client within the window means the
// client shares its peer_id and key between torrents, and nothing is learned
// from it. Off by default: any client can make the tracker merge two swarms.
import type { Logger } from 'pino';
import type { AnnounceRequest } from '@shoal/protocol';
import type { CompiledPolicy } from '@shoal/policy';
import type { PeerAddress } from '../client-address.ts';
import type { GatewayMetrics } from '../metrics.ts';
import { keyOf } from '../tracker/peer-key.ts';

export interface LinkLearnerOptions {
  windowSeconds: number;
  /** Clients remembered; beyond it, the oldest are forgotten. */
  maxClients: number;
  /** Writes a learned link (storage-api POST /v1/links, or the store's KV); true when new. */
  learn: (first: string, second: string) => Promise<boolean>;
  /** The compiled snapshot: hashes already linked are not learned again. */
  current: () => CompiledPolicy | undefined;
  metrics: GatewayMetrics;
  logger: Logger;
}

export interface LinkLearner {
  observe(request: AnnounceRequest, source: PeerAddress, nowMs: number): void;
  /** Clients remembered now. */
  readonly size: number;
}

interface Seen {
  first: Buffer;
  second: Buffer | undefined;
  /** A third hash arrived: this client shares peer_id and key between torrents. */
  shared: boolean;
  sinceMs: number;
}

export function createLinkLearner(options: LinkLearnerOptions): LinkLearner {
  const { metrics, logger } = options;
  const windowMs = options.windowSeconds * 1000;
  const clients = new Map<string, Seen>();
  /** Pairs already sent, so a client re-announcing both hashes does not write again. */
  const sent = new Set<string>();

  function learn(a: Buffer, b: Buffer): void {
    const policy = options.current();
    if (policy === undefined || policy.linked(a) || policy.linked(b)) return;
    // The lower hash first, so two gateways learning one pair store one link.
    const [first, second] = [a.toString('hex'), b.toString('hex')].sort() as [string, string];
    const pair = `${first}${second}`;
    if (sent.has(pair)) return;
    if (sent.size >= options.maxClients) sent.clear();
    sent.add(pair);
    options.learn(first, second).then(
      (added) => metrics.linkLearned(added ? 'learned' : 'known'),
      (err: unknown) => {
        sent.delete(pair);
        // PolicyError from an embedded store; storage-api's answer body from the remote one.
        const e = err as { code?: unknown; body?: { code?: unknown } };
        if (e.code === 'POLICY_ERR_LINK_CONFLICT' || e.body?.code === 'POLICY_ERR_LINK_CONFLICT') {
          metrics.linkLearned('conflict');
          return;
        }
        metrics.linkLearned('failed');
        logger.warn({ err, first, second }, 'could not store a learned hybrid link');
      },
    );
  }

  return {
    get size() {
      return clients.size;
    },
    observe(request, source, nowMs) {
      if (request.key === undefined || request.event === 'stopped') return;
      const id = `${request.peerId.toString('latin1')}\0${keyOf(request.key)}\0${source.bytes.toString('latin1')}\0${request.port}`;
      const seen = clients.get(id);
      if (seen === undefined || nowMs - seen.sinceMs > windowMs) {
        if (seen !== undefined) clients.delete(id);
        else if (clients.size >= options.maxClients) {
          const oldest = clients.keys().next();
          if (oldest.done !== true) clients.delete(oldest.value);
        }
        clients.set(id, {
          first: request.infoHash,
          second: undefined,
          shared: false,
          sinceMs: nowMs,
        });
        return;
      }
      const hash = request.infoHash;
      if (seen.shared || hash.equals(seen.first)) return;
      if (seen.second === undefined) {
        seen.second = hash;
        learn(seen.first, hash);
      } else if (!hash.equals(seen.second)) {
        seen.shared = true;
      }
    },
  };
}
