import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The flag helper runs with perl -w, and any warning fails the call (src/attributes/ioctl.ts).
    env: { XO_IMMUTABLE_FLAGS_WARNINGS: '1' },
    // Real chattr on real files: a test that sets +i clears it in its own cleanup (test/support/remote.ts).
  },
});
