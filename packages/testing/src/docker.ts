// Testcontainers is used only when a Docker engine answers (docs/conventions.md "Tests");
// otherwise the harnesses start servers from the machine's Debian packages.
import { existsSync } from 'node:fs';

let cached: Promise<boolean> | undefined;

export function dockerReachable(): Promise<boolean> {
  cached ??= (async () => {
    if (process.env.SHOAL_TEST_NO_DOCKER === '1') return false;
    if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
    try {
      const { getContainerRuntimeClient } = await import('testcontainers');
      await getContainerRuntimeClient();
      return true;
    } catch {
      return false;
    }
  })();
  return cached;
}
