// The alerts fire on the faults they are named after, and stay quiet on a
// healthy tracker: `promtool test rules` replays synthetic series (1 m steps)
// through the committed rules file.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { RULES_FILE } from './render.ts';
import { JOBS } from './rules.ts';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

interface Series {
  series: string;
  values: string;
}
interface ExpectedAlert {
  exp_labels: Record<string, string>;
  exp_annotations: Record<string, string>;
}
interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts: ExpectedAlert[];
}

async function promtoolTest(input: Series[], cases: AlertCase[]): Promise<string> {
  const file = join(dir, `case-${++n}.yml`);
  await writeFile(
    file,
    stringify({
      rule_files: [join(repoRoot, RULES_FILE)],
      evaluation_interval: '1m',
      tests: [{ interval: '1m', input_series: input, alert_rule_test: cases }],
    }),
  );
  try {
    const { stdout } = await run('promtool', ['test', 'rules', file]);
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`promtool test rules failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
      cause: err,
    });
  }
}

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-alerts-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const gw = (instance: string, namespace?: string): string =>
  `job="${JOBS.gateway}",instance="${instance}"${namespace ? `,namespace="${namespace}"` : ''}`;
const gc = (instance: string, namespace?: string): string =>
  `job="${JOBS.gcWorker}",instance="${instance}"${namespace ? `,namespace="${namespace}"` : ''}`;

// The alerts each case expects, built once: their annotations are the text an
// operator reads, so every case checks the whole of it.
const inRelease = (namespace?: string): Record<string, string> => (namespace ? { namespace } : {});
const quiet = (eval_time: string, alertname: string): AlertCase => ({
  eval_time,
  alertname,
  exp_alerts: [],
});
const fires = (eval_time: string, alertname: string, alert: ExpectedAlert): AlertCase => ({
  eval_time,
  alertname,
  exp_alerts: [alert],
});
const gatewayAllDown = (namespace?: string): ExpectedAlert => ({
  exp_labels: { severity: 'critical', job: JOBS.gateway, ...inRelease(namespace) },
  exp_annotations: {
    summary: 'No gateway replica is up',
    description: 'No announce-gateway target answers scrapes: the tracker is offline.',
  },
});
const gcNoLeader = (namespace?: string): ExpectedAlert => ({
  exp_labels: { severity: 'critical', job: JOBS.gcWorker, ...inRelease(namespace) },
  exp_annotations: {
    summary: 'No gc-worker holds the GC lease',
    description:
      'For 5 minutes no gc-worker instance reported shoal_gc_leader=1: expired peers are not deleted and swarm memory grows.',
  },
});
const gcNotSucceeding = (age: string, namespace?: string): ExpectedAlert => ({
  exp_labels: { severity: 'warning', job: JOBS.gcWorker, ...inRelease(namespace) },
  exp_annotations: {
    summary: `No successful garbage collection for ${age}`,
    description:
      'The newest shoal_gc_last_success_timestamp_seconds is older than 15 minutes (15 GC_INTERVAL_SECONDS at the default). Check shoal_gc_runs_total{outcome="error"} and the gc-worker logs.',
  },
});
const requestsFailing = (protocol: string, percent: string, namespace?: string): ExpectedAlert => ({
  exp_labels: { severity: 'critical', job: JOBS.gateway, ...inRelease(namespace), protocol },
  exp_annotations: {
    summary: `More than 5% of ${protocol} tracker requests fail`,
    description: `${percent} of ${protocol} requests ended with outcome="failed" (storage or internal errors) over 5 minutes. See the Shoal overview dashboard, "Errors by code".`,
  },
});

describe('alert rules under promtool', () => {
  it('page when a gateway replica, or every replica, is down', async () => {
    const out = await promtoolTest(
      [
        { series: `up{${gw('gw-1:9090')}}`, values: '1 1 0x10' },
        { series: `up{${gw('gw-2:9090')}}`, values: '1x12' },
      ],
      [
        quiet('1m', 'ShoalGatewayReplicaDown'),
        fires('6m', 'ShoalGatewayReplicaDown', {
          exp_labels: { severity: 'warning', job: JOBS.gateway, instance: 'gw-1:9090' },
          exp_annotations: {
            summary: 'Gateway replica gw-1:9090 is down',
            description: 'Prometheus has not scraped gateway gw-1:9090 for 2 minutes.',
          },
        }),
        // One replica of two still serves: the tracker is up.
        quiet('6m', 'ShoalGatewayAllDown'),
      ],
    );
    expect(out).toContain('SUCCESS');
    await promtoolTest(
      [{ series: `up{${gw('gw-1:9090')}}`, values: '0x10' }],
      [fires('5m', 'ShoalGatewayAllDown', gatewayAllDown())],
    );
  });

  it('page when no gc-worker leads, warn when two do, stay quiet with one', async () => {
    await promtoolTest(
      [
        { series: `shoal_gc_leader{${gc('gc-1')}}`, values: '1x5 0x20' },
        { series: `shoal_gc_leader{${gc('gc-2')}}`, values: '0x5 0x10 1x10' },
      ],
      [
        quiet('4m', 'ShoalGcNoLeader'),
        fires('14m', 'ShoalGcNoLeader', gcNoLeader()),
        // gc-2 took over at 16m.
        quiet('20m', 'ShoalGcNoLeader'),
        quiet('20m', 'ShoalGcSplitBrain'),
      ],
    );
    // Every gc-worker gone: no leader series at all.
    await promtoolTest(
      [{ series: `up{${gc('gc-1')}}`, values: '0x10' }],
      [fires('8m', 'ShoalGcNoLeader', gcNoLeader())],
    );
    // No gc-worker series at all (not even up): only a gateway is scraped.
    await promtoolTest(
      [{ series: `up{${gw('gw-1:9090')}}`, values: '1x10' }],
      [fires('8m', 'ShoalGcNoLeader', gcNoLeader())],
    );
    await promtoolTest(
      [
        { series: `shoal_gc_leader{${gc('gc-1')}}`, values: '1x10' },
        { series: `shoal_gc_leader{${gc('gc-2')}}`, values: '0 0 1x8' },
      ],
      [
        fires('6m', 'ShoalGcSplitBrain', {
          exp_labels: { severity: 'warning', job: JOBS.gcWorker },
          exp_annotations: {
            summary: '2 gc-worker instances believe they lead',
            description:
              'More than one gc-worker reported shoal_gc_leader=1 for 2 minutes: the lease is not exclusive (clock skew, or a lease backend that lost writes).',
          },
        }),
      ],
    );
  });

  it('warn when garbage collection stops succeeding, not while it runs every minute', async () => {
    const out = await promtoolTest(
      [
        // Succeeds each minute, then stops at 10m (the timestamp freezes at 600 s).
        {
          series: `shoal_gc_last_success_timestamp_seconds{${gc('gc-1')}}`,
          values: '0+60x10 600x30',
        },
      ],
      [
        quiet('10m', 'ShoalGcNotSucceeding'),
        // 15 min without success from 25m, held 5 min: fires from 30m.
        quiet('28m', 'ShoalGcNotSucceeding'),
        fires('31m', 'ShoalGcNotSucceeding', gcNotSucceeding('21m 0s')),
      ],
    );
    expect(out).toContain('SUCCESS');
  });

  it('page when requests fail, whether or not failures existed before', async () => {
    const req = (protocol: string, outcome: string): string =>
      `shoal_requests_total{${gw('gw-1:9090')},protocol="${protocol}",action="announce",outcome="${outcome}"}`;
    await promtoolTest(
      [
        { series: req('udp', 'ok'), values: '0+100x30' },
        // No failed series until the storage breaks at 10m (prom-client creates it on first inc).
        { series: req('udp', 'failed'), values: '_x10 0+20x20' },
        { series: req('http', 'ok'), values: '0+100x30' },
      ],
      [
        quiet('9m', 'ShoalRequestsFailing'),
        fires('20m', 'ShoalRequestsFailing', requestsFailing('udp', '16.67%')),
      ],
    );
  });

  it('warn when a gateway stays overloaded or keeps shedding, not on a short burst', async () => {
    await promtoolTest(
      [
        // A 5-minute burst, calm, then overload from 43m on.
        { series: `shoal_gateway_load{${gw('gw-1:9090')}}`, values: '0.2x5 3x5 0.2x30 2x40' },
        {
          series: `shoal_gateway_shed_announces_total{${gw('gw-1:9090')},kind="seeder_update"}`,
          values: '0x5 0+60x3 180x30 180+120x20',
        },
      ],
      [
        quiet('30m', 'ShoalGatewayOverloaded'),
        quiet('30m', 'ShoalAnnouncesShed'),
        fires('75m', 'ShoalGatewayOverloaded', {
          exp_labels: { severity: 'warning', job: JOBS.gateway, instance: 'gw-1:9090' },
          exp_annotations: {
            summary: 'Gateway gw-1:9090 has been overloaded for 30 minutes',
            description:
              'The load figure of gw-1:9090 averaged 2 (1 = at target) for 30 minutes, so its announce interval has been raised toward ANNOUNCE_INTERVAL_MAX_SECONDS. Add capacity where shoal_gateway_load_signal leads (docs/load.md).',
          },
        }),
        fires('55m', 'ShoalAnnouncesShed', {
          exp_labels: { severity: 'warning', job: JOBS.gateway, instance: 'gw-1:9090' },
          exp_annotations: {
            summary: 'Gateway gw-1:9090 sheds announces',
            description:
              'Gateway gw-1:9090 has answered 2 announces/s without the store for 10 minutes: too many wait on its store (docs/load.md "Shedding"). Those peers are not refreshed.',
          },
        }),
      ],
    );
  });

  it('warn when a gateway drops a tenth of its WebSocket relays, not on a few drops', async () => {
    const series = (name: string, labels: string) => `${name}{${gw('gw-1:9090')},${labels}}`;
    await promtoolTest(
      [
        {
          series: series('shoal_ws_relayed_total', 'kind="offer",scope="local"'),
          values: '0+100x60',
        },
        // 1% dropped for 20 minutes, then 25% from 20m.
        {
          series: series('shoal_ws_relay_dropped_total', 'kind="offer",reason="backpressure"'),
          values: '0+1x20 20+33x40',
        },
      ],
      [
        quiet('19m', 'ShoalWsRelayDropping'),
        fires('45m', 'ShoalWsRelayDropping', {
          exp_labels: { severity: 'warning', job: JOBS.gateway, instance: 'gw-1:9090' },
          exp_annotations: {
            summary: 'Gateway gw-1:9090 drops WebSocket offers and answers',
            description:
              'Gateway gw-1:9090 dropped 24.81% of the offers and answers it had to deliver for 15 minutes, to full socket buffers or to replicas that are gone (docs/webtorrent.md "Metrics").',
          },
        }),
      ],
    );
  });

  it('page when a gateway answers "storage unavailable"', async () => {
    await promtoolTest(
      [
        {
          series: `shoal_request_errors_total{${gw('gw-1:9090')},protocol="http",code="STORE_ERR_UNAVAILABLE"}`,
          values: '0x5 0+60x10',
        },
      ],
      [
        quiet('5m', 'ShoalStorageUnavailable'),
        fires('10m', 'ShoalStorageUnavailable', {
          exp_labels: { severity: 'critical', job: JOBS.gateway, instance: 'gw-1:9090' },
          exp_annotations: {
            summary: 'Gateway gw-1:9090 answers "storage unavailable"',
            description:
              'Gateway gw-1:9090 refused 1 requests/s with STORE_ERR_UNAVAILABLE for 2 minutes: the storage backend or storage-api is unreachable.',
          },
        }),
      ],
    );
  });
});

// Two releases (namespaces blue and green) scraped by one Prometheus, as
// kube-prometheus-stack does with the chart's ServiceMonitor: the job names are
// the same in both, so only the namespace tells them apart.
describe('alert rules with two releases in one Prometheus', () => {
  it('one leader in each release is neither a split brain nor a missing leader', async () => {
    const out = await promtoolTest(
      [
        { series: `shoal_gc_leader{${gc('gc-1', 'blue')}}`, values: '1x10' },
        { series: `shoal_gc_leader{${gc('gc-2', 'blue')}}`, values: '0x10' },
        { series: `shoal_gc_leader{${gc('gc-1', 'green')}}`, values: '1x10' },
        { series: `shoal_gc_leader{${gc('gc-2', 'green')}}`, values: '0x10' },
      ],
      [quiet('8m', 'ShoalGcSplitBrain'), quiet('8m', 'ShoalGcNoLeader')],
    );
    expect(out).toContain('SUCCESS');
  });

  it("a release without a leader is paged although the other release's leader counts one", async () => {
    await promtoolTest(
      [
        { series: `shoal_gc_leader{${gc('gc-1', 'blue')}}`, values: '1x10' },
        { series: `shoal_gc_leader{${gc('gc-1', 'green')}}`, values: '0x10' },
        { series: `up{${gc('gc-1', 'blue')}}`, values: '1x10' },
        { series: `up{${gc('gc-1', 'green')}}`, values: '1x10' },
        // green's second gc-worker is down: it has up == 0 and no leader series.
        { series: `up{${gc('gc-2', 'green')}}`, values: '0x10' },
      ],
      [fires('8m', 'ShoalGcNoLeader', gcNoLeader('green'))],
    );
    // Every gc-worker of green down (up == 0, no gauge at all) while blue leads.
    await promtoolTest(
      [
        { series: `shoal_gc_leader{${gc('gc-1', 'blue')}}`, values: '1x10' },
        { series: `up{${gc('gc-1', 'green')}}`, values: '0x10' },
      ],
      [fires('8m', 'ShoalGcNoLeader', gcNoLeader('green'))],
    );
  });

  it("a release whose gateways are all down is paged while the other release's gateways are up", async () => {
    await promtoolTest(
      [
        { series: `up{${gw('gw-1:9090', 'blue')}}`, values: '0x10' },
        { series: `up{${gw('gw-2:9090', 'blue')}}`, values: '0x10' },
        { series: `up{${gw('gw-1:9090', 'green')}}`, values: '1x10' },
      ],
      [fires('5m', 'ShoalGatewayAllDown', gatewayAllDown('blue'))],
    );
  });

  it("a small release's failures are not diluted by a busy release's successes", async () => {
    const req = (namespace: string, outcome: string): string =>
      `shoal_requests_total{${gw('gw-1:9090', namespace)},protocol="udp",action="announce",outcome="${outcome}"}`;
    await promtoolTest(
      [
        // blue: 10 req/min, half failing; green: 6000 req/min, all fine.
        { series: req('blue', 'ok'), values: '0+5x30' },
        { series: req('blue', 'failed'), values: '0+5x30' },
        { series: req('green', 'ok'), values: '0+6000x30' },
      ],
      [fires('20m', 'ShoalRequestsFailing', requestsFailing('udp', '50%', 'blue'))],
    );
  });

  it("a release whose garbage collection stalled is warned about while the other's succeeds", async () => {
    await promtoolTest(
      [
        {
          series: `shoal_gc_last_success_timestamp_seconds{${gc('gc-1', 'blue')}}`,
          values: '0x40',
        },
        {
          series: `shoal_gc_last_success_timestamp_seconds{${gc('gc-1', 'green')}}`,
          values: '0+60x40',
        },
      ],
      [fires('30m', 'ShoalGcNotSucceeding', gcNotSucceeding('30m 0s', 'blue'))],
    );
  });
});
