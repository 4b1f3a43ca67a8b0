// Keeps @shoal/monitoring's catalogue (and docs/metrics.md, rendered from it)
// in step with the registries the services really build.
import { beforeAll, describe, expect, it } from 'vitest';
import { GAUGE_AGGREGATION } from '@shoal/announce-gateway';
import { CATALOGUE } from '@shoal/monitoring';
import { serviceInventories, type ServiceInventory } from './harness/metric-inventory.ts';

describe('metric catalogue against the services', () => {
  let inventories: ServiceInventory[];

  beforeAll(async () => {
    inventories = await serviceInventories();
  });

  it('documents every metric a service registers, with its type and labels', () => {
    const problems: string[] = [];
    for (const inv of inventories) {
      for (const m of inv.metrics) {
        const spec = CATALOGUE.find((s) => s.name === m.name);
        const where = `${inv.service} (${inv.variant})`;
        if (spec === undefined) {
          problems.push(`${m.name}: registered by ${where}, missing from catalogue.ts`);
          continue;
        }
        if (spec.type !== m.type)
          problems.push(`${m.name}: ${where} registers a ${m.type}, catalogue says ${spec.type}`);
        if ([...spec.labels].sort().join(',') !== m.labels.join(','))
          problems.push(
            `${m.name}: ${where} has labels [${m.labels.join(', ')}], catalogue says [${spec.labels.join(', ')}]`,
          );
        if (!spec.services.includes(inv.service))
          problems.push(
            `${m.name}: registered by ${where}, catalogue lists ${spec.services.join(', ')}`,
          );
      }
    }
    expect(problems).toEqual([]);
  });

  it('documents no metric that its services do not register', () => {
    const problems: string[] = [];
    for (const spec of CATALOGUE) {
      for (const service of spec.services) {
        const found = inventories.some(
          (inv) => inv.service === service && inv.metrics.some((m) => m.name === spec.name),
        );
        if (!found) problems.push(`${spec.name}: documented for ${service}, not registered there`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('says for every gauge a gateway worker registers how it combines over workers (docs/workers.md "Metrics")', () => {
    // The main thread alone publishes these (and prom-client's process metrics).
    const mainThread = new Set([
      'shoal_swarm_torrents',
      'shoal_swarm_peers',
      'shoal_gateway_workers',
      'shoal_gateway_workers_configured',
    ]);
    const missing = inventories
      .filter((inv) => inv.service === 'gateway' && inv.variant !== 'workers')
      .flatMap((inv) => inv.metrics)
      .filter((m) => m.type === 'gauge' && m.name.startsWith('shoal_') && !mainThread.has(m.name))
      .map((m) => m.name)
      .filter((name) => GAUGE_AGGREGATION[name] === undefined);
    expect([...new Set(missing)]).toEqual([]);
  });
});
