/**
 * Loaded by vitest before every test file (vitest.config.ts `setupFiles`).
 *
 * fast-check prints the seed and path of a failing property in its error;
 * `FC_SEED=<seed>` (and `FC_PATH=<path>` to start at the shrunk case)
 * replays it in any property test, without each test reading the variables.
 */
import fc from 'fast-check';

const seed = process.env['FC_SEED'];
if (seed !== undefined && seed !== '') {
  const n = Number(seed);
  if (!Number.isSafeInteger(n)) throw new Error(`FC_SEED: '${seed}' is not an integer (fast-check prints the seed of a failure as "seed: N")`);
  const path = process.env['FC_PATH'];
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: n, ...(path !== undefined && path !== '' ? { path } : {}) });
}
