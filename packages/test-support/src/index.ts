/**
 * @rhizome/test-support: helpers every package's tests share, kept out of
 * the framework's packages (nothing here ships). Tests wait for conditions,
 * bounded in time, never for fixed sleeps; randomized tests print their seed
 * and replay it from an environment variable; child processes run fixtures
 * compiled to JavaScript, not TypeScript through a loader.
 */
export { until, GiveUp, DEFAULT_UNTIL_OPTIONS } from './until';
export type { UntilOptions } from './until';
export { testSeed } from './seed';
export { compileFixture } from './compile';
export { freePort } from './ports';
