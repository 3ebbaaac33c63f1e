import { defineConfig } from 'vitest/config';

// One runner for the whole workspace. Multi-process tests spawn real agents,
// so the pool is forks and timeouts are generous; speed targets live in
// `pnpm bench`, never here.
export default defineConfig({
  test: {
    include: [
      'packages/*/test/**/*.test.ts',
      'charms/*/test/**/*.test.ts',
      'test/**/*.test.ts',
      'docs/**/*.test.ts',
    ],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
