import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One runner for the whole workspace. Multi-process tests spawn real agents,
// so the pool is forks and timeouts are generous; speed targets live in
// `pnpm bench`, never here.
export default defineConfig({
  // Tests run the TypeScript sources: the packages' exports point at the
  // compiled dist/ (what Node and an npm install use), so map them back here.
  // Processes the tests spawn run the compiled code (`pnpm build` first).
  resolve: {
    alias: [
      { find: /^@rhizome\/(clock|engine|gossip|relations|agent)$/, replacement: fileURLToPath(new URL('./packages/$1/src/index.ts', import.meta.url)) },
      // Subpath exports (`@rhizome/gossip/testing`): src/<subpath>.ts.
      { find: /^@rhizome\/(engine|gossip|relations|agent)\/(testing|cli)$/, replacement: fileURLToPath(new URL('./packages/$1/src/$2.ts', import.meta.url)) },
    ],
  },
  test: {
    include: [
      'packages/*/test/**/*.test.ts',
      'charms/*/test/**/*.test.ts',
      'test/**/*.test.ts',
      'docs/**/*.test.ts',
    ],
    // FC_SEED (and FC_PATH) replay a failing fast-check property in any test: packages/test-support.
    setupFiles: ['./packages/test-support/src/vitest-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
