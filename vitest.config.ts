import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Real chattr on real files: a test that sets +i clears it in its own cleanup (test/support/remote.ts).
  },
});
