/**
 * Time, injected. The engine, the gossip mesh and the relation links never
 * read the wall clock or call Node's timers themselves: they are handed a
 * Clock, so the same code runs on real time in an agent and on virtual time
 * (VirtualClock) in tests and simulations.
 *
 * Whether a pending timer keeps a Node process running is decided per timer
 * by the code that sets it (`TimerOptions.keepAlive`), not per clock:
 * - due work (an engine retry, a batched burst waiting to run) keeps the
 *   process alive, or the work would silently never happen;
 * - periodic upkeep (gossip probes, push-pull, suspicion timeouts) does not,
 *   so an idle node never holds a process open on its own.
 * Virtual clocks ignore the option: nothing but the test drives them.
 */

/** An opaque pending timer, returned by `setTimeout` and passed back to `clearTimeout` of the same clock. */
export interface TimerHandle {
  readonly __rhizomeTimer: unique symbol;
}

export interface TimerOptions {
  /**
   * Whether this timer alone keeps a Node process running (Node's ref/unref).
   * Default true, as Node's own setTimeout.
   */
  readonly keepAlive?: boolean;
}

/** Due work: the process stays up until the timer fires or is cleared. */
export const KEEP_ALIVE: TimerOptions = Object.freeze({ keepAlive: true });
/** Upkeep: the timer fires while the process runs for other reasons, and never holds it open. */
export const BACKGROUND: TimerOptions = Object.freeze({ keepAlive: false });

export interface Clock {
  /** Milliseconds; monotonic for the life of the clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Real time: `performance.now()` and Node's timers. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle {
    const t = setTimeout(fn, ms);
    if (options?.keepAlive === false) t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  },
});

/**
 * The same clock, with every timer set through it marked `BACKGROUND`: for a
 * component all of whose timers are upkeep (the gossip node), so the choice
 * is made once, where the component is built, with its reason.
 */
export function backgroundTimers(clock: Clock): Clock {
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms, BACKGROUND),
    clearTimeout: (handle) => clock.clearTimeout(handle),
  };
}
