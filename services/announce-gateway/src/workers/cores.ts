// How many cores this process may use: GATEWAY_WORKERS's default
// (docs/workers.md "How many workers"). os.availableParallelism() counts the
// CPUs of the affinity mask; a container's CPU limit is a CFS quota instead,
// which Node 24 (libuv 1.52) does not apply here: measured on a cgroup v1
// host whose cpu controller has its own mount, a 1-CPU quota still reported
// 2. So the quota is read here, for cgroup v2 (`cpu.max`) and v1
// (`cpu.cfs_quota_us` / `cpu.cfs_period_us`), on the process's own cgroup and
// each of its ancestors, as Rust's std::thread::available_parallelism does.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';

export interface CoreSources {
  /** Prefix for /proc and /sys paths (a fixture tree in tests); '' = the real ones. */
  root?: string;
  /** The affinity mask's CPU count; os.availableParallelism() by default. */
  parallelism?: number;
}

/** min(affinity CPUs, whole CPUs of the tightest CFS quota), at least 1. */
export function usableCores(sources: CoreSources = {}): number {
  const root = sources.root ?? '';
  const parallelism = sources.parallelism ?? availableParallelism();
  const quota = cgroupCpuQuota(root);
  return Math.max(1, Math.min(parallelism, quota ?? Infinity));
}

/** Whole CPUs the tightest quota on the path to the root cgroup allows (floor, at least 1); undefined when none is set. */
export function cgroupCpuQuota(root = ''): number | undefined {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(root + path, 'utf8');
    } catch {
      return undefined;
    }
  };
  const cgroups = read('/proc/self/cgroup');
  const mounts = read('/proc/self/mountinfo');
  if (cgroups === undefined || mounts === undefined) return undefined;
  let tightest: number | undefined;
  for (const { version, mountPoint, dir } of cpuCgroupDirs(cgroups, mounts)) {
    // From the process's cgroup up to the mount point: a parent's limit binds its children.
    for (let d = dir; ; d = posix.dirname(d)) {
      const cpus = version === 2 ? parseCpuMax(read(`${d}/cpu.max`)) : parseCfs(read, d);
      if (cpus !== undefined) tightest = Math.min(tightest ?? Infinity, cpus);
      if (d === mountPoint || d === '/' || !d.startsWith(mountPoint)) break;
    }
  }
  return tightest === undefined ? undefined : Math.max(1, Math.floor(tightest));
}

/** `cpu.max` of cgroup v2: "max 100000" (no limit) or "<quota> <period>". */
export function parseCpuMax(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  return ratio(quota, period);
}

function parseCfs(read: (path: string) => string | undefined, dir: string): number | undefined {
  const quota = read(`${dir}/cpu.cfs_quota_us`)?.trim();
  // -1: no limit.
  if (quota === undefined || quota.startsWith('-')) return undefined;
  return ratio(quota, read(`${dir}/cpu.cfs_period_us`)?.trim());
}

function ratio(quota: string, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return q / p;
}

interface CpuCgroupDir {
  version: 1 | 2;
  mountPoint: string;
  /** The process's cgroup directory under that mount. */
  dir: string;
}

/**
 * The directories holding the process's CPU limits: for each line of
 * /proc/self/cgroup ("hierarchy:controllers:path"; v2 is "0::path") the
 * mount of that hierarchy in /proc/self/mountinfo, whose root field is
 * stripped from the path (a container sees its own cgroup as its mount's root).
 */
export function cpuCgroupDirs(cgroups: string, mountinfo: string): CpuCgroupDir[] {
  const mounts: Array<{ version: 1 | 2; root: string; point: string; options: string[] }> = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fstype, , superOptions = ''] = right.split(' ');
    const root = fields[3];
    const point = fields[4];
    if (root === undefined || point === undefined) continue;
    if (fstype === 'cgroup2') mounts.push({ version: 2, root, point, options: [] });
    else if (fstype === 'cgroup')
      mounts.push({ version: 1, root, point, options: superOptions.split(',') });
  }
  const out: CpuCgroupDir[] = [];
  for (const line of cgroups.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    const v2 = line.slice(0, first) === '0' && controllers === '';
    const mount = v2
      ? mounts.find((m) => m.version === 2)
      : controllers.split(',').includes('cpu')
        ? mounts.find((m) => m.version === 1 && m.options.includes('cpu'))
        : undefined;
    if (mount === undefined) continue;
    const inside =
      mount.root !== '/' && path.startsWith(mount.root) ? path.slice(mount.root.length) : path;
    out.push({
      version: mount.version,
      mountPoint: mount.point,
      dir: posix.join(mount.point, inside),
    });
  }
  return out;
}
