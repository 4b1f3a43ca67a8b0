// The chart's HTTPS tracker (docs/tls.md): with gateway.tls the gateway
// mounts the named Secret as a whole directory (a subPath mount would never
// see a renewal), points TLS_CERT_FILE/TLS_KEY_FILE into it, and the Service
// and NOTES carry the HTTPS port; values that cannot work are refused.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '@shoal/announce-gateway';
import {
  containerEnv,
  ensureHelm,
  find,
  helmTemplate,
  renderChart,
  renderNotes,
  type K8sObject,
} from './harness/helm.ts';

interface Container {
  name: string;
  ports?: Array<{ name: string; containerPort: number; protocol: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>;
}
interface PodSpec {
  containers: Container[];
  volumes?: Array<{ name: string; secret?: { secretName: string } }>;
}

const podSpec = (o: K8sObject): PodSpec =>
  (o.spec as { template: { spec: PodSpec } }).template.spec;

const servicePorts = (o: K8sObject): string[] =>
  (o.spec as { ports: Array<{ name: string; port: number; protocol: string }> }).ports
    .map((p) => `${p.name} ${p.protocol}/${p.port}`)
    .sort();

beforeAll(async () => {
  await ensureHelm();
}, 300_000);

describe('gateway HTTPS in the chart (Helm 4)', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderChart(4, { values: ['gateway-tls-values.yaml'] });
  });

  it('mounts the Secret as a directory and gives the gateway its files and port', () => {
    const gw = find(objects, 'Deployment', 'shoal-gateway');
    const spec = podSpec(gw);
    const container = spec.containers.find((c) => c.name === 'gateway');
    const mount = container?.volumeMounts?.find((m) => m.name === 'tls');
    expect(mount).toEqual({ name: 'tls', mountPath: '/etc/shoal/tls', readOnly: true });
    expect(spec.volumes?.find((v) => v.name === 'tls')?.secret?.secretName).toBe(
      'tracker-example-tls',
    );
    expect(container?.ports?.map((p) => `${p.name} ${p.protocol}/${p.containerPort}`)).toEqual([
      'udp UDP/6969',
      'https TCP/8443',
      'admin TCP/9090',
    ]);
    const env = containerEnv(objects, gw, 'gateway', {
      externalSecrets: {},
      fieldRefs: {},
    });
    const config = loadGatewayConfig({ env, argv: [] });
    expect(config.TLS_CERT_FILE).toBe('/etc/shoal/tls/tls.crt');
    expect(config.TLS_KEY_FILE).toBe('/etc/shoal/tls/tls.key');
    expect(config.HTTPS_PORT).toBe(8443);
    expect(config.TLS_RELOAD_CHECK_SECONDS).toBe(30);
    expect(config.HTTP_ENABLED).toBe(false);
  });

  it('the Service carries HTTPS and UDP, and NOTES gives the https URL', async () => {
    expect(servicePorts(find(objects, 'Service', 'shoal-gateway'))).toEqual([
      'https TCP/8443',
      'udp UDP/6969',
    ]);
    const split = await renderChart(4, {
      values: ['gateway-tls-values.yaml'],
      set: { 'gateway.service.split': 'true' },
    });
    expect(servicePorts(find(split, 'Service', 'shoal-gateway-tcp'))).toEqual(['https TCP/8443']);
    const notes = await renderNotes(4, { values: ['gateway-tls-values.yaml'] });
    expect(notes).toContain(':8443/announce');
    expect(notes).not.toContain('http://$ADDR');
  });

  it('renders no TLS volume, port or setting by default', async () => {
    const defaults = await renderChart(4);
    const gw = find(defaults, 'Deployment', 'shoal-gateway');
    expect(JSON.stringify(gw)).not.toMatch(/TLS_CERT_FILE|"tls"|https/);
  });

  it.each([
    {
      what: 'TLS without a Secret',
      set: { 'gateway.tls.enabled': 'true' },
      message: /gateway\.tls\.enabled needs gateway\.tls\.secretName/,
    },
    {
      what: 'HTTPS on the HTTP port',
      set: {
        'gateway.tls.enabled': 'true',
        'gateway.tls.secretName': 's',
        'gateway.tls.httpsPort': '6969',
      },
      message: /gateway\.tls\.httpsPort must differ from gateway\.port/,
    },
  ])('refuses $what', async ({ set, message }) => {
    const r = await helmTemplate(4, { set });
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(message);
  });
});
