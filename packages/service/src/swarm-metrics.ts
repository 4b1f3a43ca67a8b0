// The swarm gauges (docs/metrics.md): storage-api publishes them for its peer
// store, and a gateway with an embedded store for its own, so `make run`
// shows its swarms too. One definition, so the two cannot drift apart.
import { Gauge, type Registry } from 'prom-client';

interface FamilyCounts {
  v4: number;
  v6: number;
}

/** A store's live counts (@shoal/storage's StoreStats). */
export interface SwarmStats {
  torrents: number;
  seeders: FamilyCounts;
  leechers: FamilyCounts;
}

export interface SwarmGauges {
  set(stats: SwarmStats): void;
}

export function createSwarmGauges(registry: Registry): SwarmGauges {
  const torrents = new Gauge({
    name: 'shoal_swarm_torrents',
    help: 'Swarms with at least one live peer (refreshed every STATS_INTERVAL_SECONDS).',
    registers: [registry],
  });
  const peers = new Gauge({
    name: 'shoal_swarm_peers',
    help: 'Live peers by kind (seeders, leechers) and family (v4, v6), refreshed every STATS_INTERVAL_SECONDS.',
    labelNames: ['kind', 'family'] as const,
    registers: [registry],
  });
  return {
    set(stats) {
      torrents.set(stats.torrents);
      peers.labels('seeders', 'v4').set(stats.seeders.v4);
      peers.labels('seeders', 'v6').set(stats.seeders.v6);
      peers.labels('leechers', 'v4').set(stats.leechers.v4);
      peers.labels('leechers', 'v6').set(stats.leechers.v6);
    },
  };
}
