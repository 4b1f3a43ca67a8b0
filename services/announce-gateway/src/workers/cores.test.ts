import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cgroupCpuQuota, parseCpuMax, usableCores } from './cores.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fixture tree: /proc/self/{cgroup,mountinfo} and the cgroup files, under a temp root. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'shoal-cores-'));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const V2_MOUNT =
  '29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n';
const V1_MOUNTS = [
  '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
  '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '',
].join('\n');

describe('usableCores', () => {
  it('reads a cgroup v2 cpu.max inside a container (its cgroup is the mount root) and floors it', () => {
    const root = tree({
      '/proc/self/cgroup': '0::/\n',
      '/proc/self/mountinfo': V2_MOUNT,
      '/sys/fs/cgroup/cpu.max': '250000 100000\n',
    });
    expect(cgroupCpuQuota(root)).toBe(2);
    expect(usableCores({ root, parallelism: 16 })).toBe(2);
    expect(usableCores({ root, parallelism: 1 })).toBe(1);
  });

  it('takes the tightest limit on the path to the root, on a host with nested cgroups', () => {
    const root = tree({
      '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
      '/proc/self/mountinfo': V2_MOUNT,
      '/sys/fs/cgroup/kubepods/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': '300000 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n',
    });
    expect(usableCores({ root, parallelism: 8 })).toBe(3);
  });

  it('reads cgroup v1 cfs quota and period, with the mount root stripped from the path', () => {
    const root = tree({
      '/proc/self/cgroup': '4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n',
      '/proc/self/mountinfo': V1_MOUNTS.replace(
        ' / /sys/fs/cgroup/cpu,cpuacct',
        ' /docker/abc /sys/fs/cgroup/cpu,cpuacct',
      ),
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '400000\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(usableCores({ root, parallelism: 64 })).toBe(4);
  });

  it('gives at least one worker under a fractional quota, and the affinity count without any quota', () => {
    const half = tree({
      '/proc/self/cgroup': '3:cpu,cpuacct:/\n',
      '/proc/self/mountinfo': V1_MOUNTS,
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '50000\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(usableCores({ root: half, parallelism: 4 })).toBe(1);
    const unlimited = tree({
      '/proc/self/cgroup': '3:cpu,cpuacct:/\n',
      '/proc/self/mountinfo': V1_MOUNTS,
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(usableCores({ root: unlimited, parallelism: 6 })).toBe(6);
    expect(usableCores({ root: tree({}), parallelism: 3 })).toBe(3);
  });

  it('ignores what it cannot parse', () => {
    expect(parseCpuMax('max 100000')).toBeUndefined();
    expect(parseCpuMax('garbage')).toBeUndefined();
    expect(parseCpuMax('100000 0')).toBeUndefined();
    expect(parseCpuMax('150000 100000')).toBe(1.5);
  });

  it('answers on this machine without throwing', () => {
    expect(usableCores()).toBeGreaterThanOrEqual(1);
  });
});
