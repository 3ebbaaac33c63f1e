/**
 * `until(what, probe)`: polls `probe` until it returns a value (anything but
 * `undefined`, `null` or `false`) and resolves with it. A probe that throws
 * is retried as one that returned nothing (an agent that is still starting
 * refuses connections), and its last error is kept for the report; a probe
 * that knows the wait is hopeless (the process it waits on exited) throws
 * `GiveUp`, which ends the wait at once with that error.
 *
 * Bounded in time and in attempts: past `timeoutMs` it throws an error
 * naming `what`, the time waited, the attempts and the last error, so a
 * failure says what the test saw, not just "timeout". The probe's own time
 * counts: a probe that hangs past the deadline is not awaited forever.
 *
 * `RHIZOME_TEST_WAITS=1` prints every wait that succeeded, with its time
 * (to stderr): where a slow test file spends its time, without editing it.
 *
 * @example
 * const nn = await until('the namenode to list 3 workers', async () => {
 *   const w = await workers();
 *   return w.length === 3 ? w : undefined;
 * }, { timeoutMs: 30_000 });
 */
export interface UntilOptions {
  /** Give up after this long (default 30 s: generous on a loaded 2-core machine; fast when the condition holds). */
  readonly timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  readonly intervalMs?: number;
}

export const DEFAULT_UNTIL_OPTIONS = Object.freeze({
  timeoutMs: 30_000,
  intervalMs: 50,
});

const TRACE = process.env['RHIZOME_TEST_WAITS'] === '1';

/** Thrown by a probe: stop waiting now, failing with this error. */
export class GiveUp extends Error {
  override readonly name = 'GiveUp';
}

type Found<T> = Exclude<Awaited<T>, undefined | null | false>;

const isFound = <T>(v: T): boolean => v !== undefined && v !== null && v !== false;

/** Accepts `timeoutMs` alone as a number for brevity: `until('x', probe, 10_000)`. */
export async function until<T>(what: string, probe: () => T | Promise<T>, options: UntilOptions | number = {}): Promise<Found<T>> {
  const o = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = o.timeoutMs ?? DEFAULT_UNTIL_OPTIONS.timeoutMs;
  const intervalMs = o.intervalMs ?? DEFAULT_UNTIL_OPTIONS.intervalMs;
  if (!(timeoutMs > 0) || !(intervalMs >= 0)) throw new TypeError(`until(${what}): timeoutMs must be positive and intervalMs not negative`);
  const started = performance.now();
  const deadline = started + timeoutMs;
  // A second bound, on attempts, for a probe that returns at once: time alone bounds it too, but this one is independent of the clock.
  const maxAttempts = Math.ceil(timeoutMs / Math.max(intervalMs, 1)) + 2;
  let last: unknown;
  let attempts = 0;
  const expired = Symbol('expired');
  while (attempts < maxAttempts) {
    attempts++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const left = Math.max(deadline - performance.now(), 1);
      const v = await Promise.race([
        Promise.resolve().then(probe),
        new Promise<typeof expired>((resolve) => {
          timer = setTimeout(() => resolve(expired), left);
        }),
      ]);
      if (v !== expired && isFound(v)) {
        if (TRACE) process.stderr.write(`until: ${Math.round(performance.now() - started)} ms (${attempts} attempt(s)) for ${what}\n`);
        return v as Found<T>;
      }
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    } finally {
      clearTimeout(timer);
    }
    if (performance.now() + intervalMs > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  const took = Math.round(performance.now() - started);
  const why = last === undefined ? '' : `; last error: ${last instanceof Error ? last.message : String(last)}`;
  throw new Error(`timed out after ${took} ms (${attempts} attempt(s)) waiting for ${what}${why}`);
}
