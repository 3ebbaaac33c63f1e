import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest (seconds, from the suite's run on main at
 * 09:28 on 5 Dec, under load). Only used while vitest has no timings of its
 * own (a fresh clone: no node_modules/.vite/vitest cache): with two workers,
 * a long file started last would leave one core idle at the end of the run.
 * Rough values are enough; once the cache has timings, they rule.
 */
const KNOWN_SLOW: Readonly<Record<string, number>> = {
  'test/operator-trial.test.ts': 147,
  'test/upgrade-model.test.ts': 131,
  'test/agent-crash.test.ts': 98,
  'test/ssh-deploy.test.ts': 83,
  'test/chaos.test.ts': 78,
  'test/multihost.test.ts': 65,
  'test/operator-trial-2.test.ts': 60,
  'packages/agent/test/cli/operator-cli.test.ts': 53,
  'test/e2e-postgresql.test.ts': 46,
  'test/multihost-services.test.ts': 44,
  'test/e2e-web-lb.test.ts': 43,
  'test/release.test.ts': 40,
  'docs/charm-guide.test.ts': 38,
  'test/agent-cluster.test.ts': 35,
  'packages/agent/test/executors/ansible.test.ts': 32,
  'test/deploy-record.test.ts': 28,
};

/** Longest first: vitest's own order (cached durations, else file size), or KNOWN_SLOW when the cache has no timings. */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const root = this.ctx.config.root;
    const key = (f: TestSpecification): string => relative(root, f.moduleId);
    if (sorted.some((f) => this.ctx.cache.getFileTestResults(`${f.project.name}:${key(f)}`) !== undefined)) return sorted;
    // Array.prototype.sort is stable: files not listed keep vitest's order, after the listed ones.
    return sorted.sort((a, b) => (KNOWN_SLOW[key(b)] ?? 0) - (KNOWN_SLOW[key(a)] ?? 0));
  }
}

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
    // Two files at a time, whatever the core count. vitest's default in a run
    // is cores - 1, one file at a time on a 2-core machine, and most of the
    // suite's wall time is waiting (processes starting, gossip rounds, sshd,
    // ansible), so a second file fits beside it. Each file keeps its own
    // resources (temporary homes, free ports, namespaces with their own
    // prefix or a random tag), so two never collide. `--maxWorkers=1` runs
    // them one by one (to time a file alone, or to bisect an interaction).
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
