// A full scrape (docs/full-scrape.md): every live swarm with its counts, the
// largest first, at most `limit` of them. Built from what every driver
// already has, the admin view's topSwarms walk (docs/storage.md
// "Capabilities") and one scrape of the hashes it found for the download
// counts, so memory, Redis and PostgreSQL need no query of their own; a
// store that answers it itself (the gateway's storage-api client) implements
// FullScrape. Never on the announce path: the gateway serves it from a cache.
import { hasTopSwarms } from './capabilities.ts';
import { StoreError } from './errors.ts';
import type { PeerStore, SwarmCounts } from './types.ts';

/** Most swarms one full scrape may list. */
export const FULL_SCRAPE_MAX = 100_000;

export interface FullScrapeEntry extends SwarmCounts {
  /** 20 bytes. */
  infoHash: Buffer;
}

export interface FullScrapeResult {
  /** Swarms with at least one live peer, the most peers first. */
  swarms: FullScrapeEntry[];
  /** true when more swarms were live than `limit`: the smallest were left out. */
  truncated: boolean;
}

/** Answers a full scrape itself. Rejects with STORE_ERR_BAD_INPUT for a limit outside 1..FULL_SCRAPE_MAX. */
export interface FullScrape {
  fullScrape(limit: number): Promise<FullScrapeResult>;
}

export function hasFullScrape<S extends object>(store: S): store is S & FullScrape {
  return typeof (store as Record<string, unknown>).fullScrape === 'function';
}

export function validateFullScrapeLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > FULL_SCRAPE_MAX)
    throw new StoreError(
      'STORE_ERR_BAD_INPUT',
      `limit must be an integer in 1..${FULL_SCRAPE_MAX}`,
    );
}

/** The store's full scrape, or undefined when it can list no swarms. */
export function fullScrapeOf(
  store: PeerStore,
): ((limit: number) => Promise<FullScrapeResult>) | undefined {
  if (hasFullScrape(store)) return (limit) => store.fullScrape(limit);
  if (!hasTopSwarms(store)) return undefined;
  return async (limit) => {
    validateFullScrapeLimit(limit);
    // One more than asked tells whether any were left out.
    const top = await store.topSwarms(limit + 1);
    const truncated = top.length > limit;
    const kept = truncated ? top.slice(0, limit) : top;
    const counts = await store.scrape(kept.map((t) => t.infoHash));
    const swarms: FullScrapeEntry[] = [];
    kept.forEach((t, i) => {
      const c = counts[i];
      // A swarm that emptied between the two calls is no longer live.
      if (c !== undefined && c.seeders + c.leechers > 0)
        swarms.push({ infoHash: t.infoHash, ...c });
    });
    return { swarms, truncated };
  };
}
