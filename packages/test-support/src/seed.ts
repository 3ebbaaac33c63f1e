/**
 * Seeds for randomized tests: taken from an environment variable when set
 * (a replay), else picked at random; printed either way, with the line that
 * replays it, so a failure seen in CI can be run again exactly.
 *
 * @example
 * const seed = testSeed('RHIZOME_CRASH_SEED', 'agent crash test');
 * const random = seededRandom(seed);
 */
export function testSeed(envName: string, label: string): number {
  const given = process.env[envName];
  let seed: number;
  if (given !== undefined && given !== '') {
    seed = Number(given);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`${envName}: '${given}' is not a non-negative integer`);
  } else {
    seed = Math.floor(Math.random() * 2 ** 31);
  }
  process.stdout.write(`${label}: seed ${seed} (replay: ${envName}=${seed})\n`);
  return seed;
}
