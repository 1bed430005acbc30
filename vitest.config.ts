import { defineConfig } from 'vitest/config';

// Tests import TypeScript sources directly; server/crash tests spawn the built
// server (dist/), which `npm test` builds first (pretest).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/plain-summary-reporter.ts'],
  },
});
