import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources; nothing is built first (docs/conventions.md).
// Where test code lives: docs/testing.md.
export default defineConfig({
  test: {
    include: [
      'packages/*/{src,test}/**/*.test.ts',
      'services/*/{src,test}/**/*.test.ts',
      'tests/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    // The container tests run apart (tests/images/vitest.config.ts, `make test-images`).
    exclude: ['**/node_modules/**', 'tests/images/**'],
    testTimeout: 30_000,
    // expect.poll gives up after 1 s by default: a short wall-clock bound on a
    // loaded machine (docs/testing.md "Under load"). A poll that needs a
    // bound of its own still passes its own timeout.
    expect: { poll: { timeout: 20_000 } },
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
