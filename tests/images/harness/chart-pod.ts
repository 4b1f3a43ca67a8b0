// A container of a rendered pod, run by podman as a kubelet would run it
// (docs/testing.md "Container test"): the rendered env, command and args,
// the pod's user and group, a read-only root, dropped capabilities, no
// privilege escalation, emptyDirs as tmpfs, ConfigMap and Secret volumes as
// read-only files (group fsGroup, as the kubelet makes them), the service
// account's files where the pod mounts them, and every container port
// published on a free loopback port. Containers sit on podman's bridge
// network, each with its own addresses, so the chart's fixed ports are used
// as rendered; the Service names the env refers to resolve through --add-host.
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { K8sObject } from '../../src/harness/helm.ts';
import { podman, type Container, type ContainerRun } from './podman.ts';

interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}
interface HttpProbe {
  httpGet?: { path: string; port: number | string };
}
export interface PodContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: ContainerPort[];
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: VolumeMount[];
  readinessProbe?: HttpProbe;
  startupProbe?: HttpProbe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
interface Volume {
  name: string;
  emptyDir?: { sizeLimit?: string };
  configMap?: { name: string };
  secret?: { secretName: string; defaultMode?: number };
}
export interface PodSpec {
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  containers: PodContainer[];
  volumes?: Volume[];
}

export function podSpecOf(workload: K8sObject): PodSpec {
  const spec = workload.spec as { template?: { spec: PodSpec } } & PodSpec;
  return workload.kind === 'Pod' ? spec : spec.template!.spec;
}

export function podContainer(pod: PodSpec, name: string): PodContainer {
  const c = pod.containers.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no container ${name}`);
  return c;
}

/** The user podman runs it as: the container's securityContext over the pod's. */
export function runAs(pod: PodSpec, c: PodContainer): { uid: number; gid: number } | undefined {
  const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  const gid = c.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup ?? uid;
  return uid === undefined ? undefined : { uid, gid: gid! };
}

/** A probe's port as a number (a named port resolved against the container's ports). */
export function probePort(c: PodContainer, port: number | string): number {
  if (typeof port === 'number') return port;
  const found = c.ports?.find((p) => p.name === port);
  if (found === undefined) throw new Error(`${c.name}: probe port ${port} is not a container port`);
  return found.containerPort;
}

function objectData(
  objects: readonly K8sObject[],
  kind: 'Secret' | 'ConfigMap',
  name: string,
): Record<string, Buffer> | undefined {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name) as
    | (K8sObject & { data?: Record<string, string>; stringData?: Record<string, string> })
    | undefined;
  if (o === undefined) return undefined;
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(o.data ?? {}))
    out[k] = kind === 'Secret' ? Buffer.from(v, 'base64') : Buffer.from(v);
  for (const [k, v] of Object.entries(o.stringData ?? {})) out[k] = Buffer.from(v);
  return out;
}

export interface ChartRunOptions {
  run: ContainerRun;
  /** Container name within the run. */
  name: string;
  objects: readonly K8sObject[];
  pod: PodSpec;
  container: PodContainer;
  image: string;
  env: Readonly<Record<string, string>>;
  /** Host name -> address, as cluster DNS would answer. */
  hosts?: Readonly<Record<string, string>>;
  /** Where mounted files are written. */
  dir: string;
  /** The service account's files (token, ca.crt, namespace) where the pod mounts them. */
  serviceAccount?: Readonly<Record<string, string>>;
}

export interface ChartContainer {
  container: Container;
  /** Host port published for a container port ("9090/tcp"). */
  hostPort(containerPort: number, protocol?: 'tcp' | 'udp'): Promise<number>;
  /** Address on the bridge network. */
  address(): Promise<string>;
}

function writeFiles(dir: string, files: Record<string, Buffer>, mode: number, gid?: number): void {
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(files)) {
    const path = join(dir, k);
    writeFileSync(path, v, { mode });
    if (gid !== undefined) chownSync(path, 0, gid);
  }
}

/** Starts one rendered container with everything the kubelet would give it. */
export async function runChartContainer(o: ChartRunOptions): Promise<ChartContainer> {
  const { pod, container: c } = o;
  const flags: string[] = [];
  const user = runAs(pod, c);
  if (user !== undefined) flags.push('--user', `${user.uid}:${user.gid}`);
  const fsGroup = pod.securityContext?.fsGroup;
  if (fsGroup !== undefined) flags.push('--group-add', String(fsGroup));
  if (c.securityContext?.readOnlyRootFilesystem === true) flags.push('--read-only');
  if (c.securityContext?.allowPrivilegeEscalation === false)
    flags.push('--security-opt', 'no-new-privileges');
  for (const cap of c.securityContext?.capabilities?.drop ?? []) flags.push('--cap-drop', cap);
  for (const [host, ip] of Object.entries(o.hosts ?? {})) flags.push('--add-host', `${host}:${ip}`);
  for (const p of c.ports ?? [])
    flags.push('--publish', `127.0.0.1::${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`);

  // Volumes, as the kubelet mounts them (a group-readable file for fsGroup).
  for (const m of c.volumeMounts ?? []) {
    const v = pod.volumes?.find((x) => x.name === m.name);
    if (v === undefined) throw new Error(`${c.name}: volumeMount ${m.name} has no volume`);
    if (v.emptyDir !== undefined) {
      const size = v.emptyDir.sizeLimit === undefined ? '' : `,size=${v.emptyDir.sizeLimit}`;
      flags.push('--tmpfs', `${m.mountPath}:rw,mode=1777${size.replace(/i$/, '')}`);
      continue;
    }
    const kind = v.configMap !== undefined ? 'ConfigMap' : v.secret !== undefined ? 'Secret' : '';
    if (kind === '') throw new Error(`${c.name}: volume ${v.name} is of a kind this test lacks`);
    const objectName = v.configMap?.name ?? v.secret!.secretName;
    const data = objectData(o.objects, kind, objectName);
    if (data === undefined) throw new Error(`${c.name}: ${kind} ${objectName} is not rendered`);
    const dir = join(o.dir, o.name, v.name);
    const mode = (v.secret?.defaultMode ?? 0o644) | (fsGroup === undefined ? 0 : 0o040);
    writeFiles(dir, data, mode, fsGroup);
    flags.push('--volume', `${dir}:${m.mountPath}:ro`);
  }
  if (pod.automountServiceAccountToken === true && o.serviceAccount !== undefined) {
    const dir = join(o.dir, o.name, 'serviceaccount');
    const files = Object.fromEntries(
      Object.entries(o.serviceAccount).map(([k, v]) => [k, Buffer.from(v)]),
    );
    writeFiles(dir, files, 0o644 | 0o040, fsGroup);
    flags.push('--volume', `${dir}:/var/run/secrets/kubernetes.io/serviceaccount:ro`);
  }
  // command replaces the image's ENTRYPOINT, args its CMD (as in Kubernetes).
  if (c.command !== undefined) flags.push('--entrypoint', JSON.stringify(c.command));

  const container = await o.run.start({
    name: o.name,
    image: o.image,
    network: 'bridge',
    env: o.env,
    flags,
    args: c.args ?? [],
  });
  return {
    container,
    async hostPort(containerPort, protocol = 'tcp') {
      const out = await podman(['port', container.name, `${containerPort}/${protocol}`]);
      const port = Number(out.trim().split('\n')[0]?.split(':').pop());
      if (!Number.isInteger(port) || port <= 0)
        throw new Error(`${o.name}: ${containerPort}/${protocol} not published (${out})`);
      return port;
    },
    async address() {
      return (
        await podman(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', container.name])
      ).trim();
    },
  };
}
