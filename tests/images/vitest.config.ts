import { defineConfig } from 'vitest/config';

// The container tests (docs/testing.md "Container test"): `make test-images`.
// Run by `make test` after `pnpm test` (the root vitest.config.ts excludes tests/images):
// they build images and run a dozen containers, minutes on a warm cache.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['tests/images/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    globalSetup: ['tests/images/global-setup.ts'],
    testTimeout: 60_000,
    // expect.poll gives up after 1 s by default: a short wall-clock bound on a
    // loaded machine (docs/testing.md "Under load"). A poll that needs a
    // bound of its own still passes its own timeout.
    expect: { poll: { timeout: 20_000 } },
    hookTimeout: 300_000,
    pool: 'forks',
    // One file at a time: each starts its own containers on a shared 2-core machine.
    fileParallelism: false,
    reporters: ['default'],
  },
});
