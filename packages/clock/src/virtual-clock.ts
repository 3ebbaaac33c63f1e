/**
 * Virtual time for tests and simulations: one event-queue scheduler for the
 * engine, the relation links and the gossip simulator.
 *
 * A binary heap of (time, seq) timers. Time moves only when the caller says:
 * - `advance(ms)` / `runUntil(pred, ms)` (async): between virtual
 *   milliseconds the promise job queue is drained, so async code (a leave,
 *   a query, a durable commit) progresses as it would on a real clock;
 * - `advanceSync(ms)`: fires due timers without yielding, for code that is
 *   synchronous between timers (the engine's retries).
 * Each timer fires at its exact virtual instant, ties in scheduling order.
 * `TimerOptions.keepAlive` is ignored: nothing but the caller drives time.
 */
import type { Clock, TimerHandle } from './clock';

/**
 * A timer object the caller builds and hands to `schedule`: `fn` runs with
 * the timer as `this`, so a simulated frame in flight is one object instead
 * of a timer plus a closure (at N = 10,000 the simulator moves hundreds of
 * millions of them). `seq` is assigned by the clock.
 */
export interface ScheduledTimer {
  at: number;
  seq: number;
  fn: ((this: ScheduledTimer) => void) | null;
}

const flushJobs = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  private heap: ScheduledTimer[] = [];
  /** Scheduled and not yet fired nor cleared. */
  private live = 0;
  /** Timers fired so far (for benchmarks). */
  fired = 0;

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: ScheduledTimer = { at: this.time + Math.max(0, ms), seq: 0, fn };
    this.schedule(t);
    return t as unknown as TimerHandle;
  }

  /** Schedules a timer object the caller built (its `fn` runs with it as `this`) at absolute time `t.at` (never in the past). */
  schedule(t: ScheduledTimer): void {
    t.seq = this.seq++;
    if (t.at < this.time) t.at = this.time;
    this.live++;
    this.push(t);
  }

  clearTimeout(handle: TimerHandle): void {
    const t = handle as unknown as ScheduledTimer;
    if (t.fn === null) return;
    t.fn = null;
    this.live--;
  }

  /** Timers waiting to fire (cleared ones excluded). */
  get pending(): number {
    return this.live;
  }

  /** Fires every timer due within the next `ms` of virtual time, without yielding to promise jobs; time ends exactly `ms` later. */
  advanceSync(ms: number): void {
    const deadline = this.time + Math.max(0, ms);
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > deadline) break;
      this.fire(next);
    }
    this.time = deadline;
  }

  /** Runs every timer due within the next `ms` of virtual time, draining promise jobs as time moves; time ends exactly `ms` later. */
  async advance(ms: number): Promise<void> {
    await this.runUntil(() => false, ms);
  }

  /**
   * Runs timers until `pred()` holds (checked whenever virtual time moves on,
   * at most every `checkEveryMs`) or `maxMs` of virtual time have passed.
   * Returns whether `pred` held; the clock stops at the instant it did.
   */
  async runUntil(pred: () => boolean, maxMs: number, checkEveryMs = 1): Promise<boolean> {
    const deadline = this.time + maxMs;
    await flushJobs();
    if (pred()) return true;
    let lastCheck = this.time;
    let lastFlush = Math.floor(this.time);
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > deadline) break;
      if (next.at > this.time && Math.floor(next.at) !== lastFlush) {
        // Time is about to move: let promise jobs of the current instant run, then maybe check.
        await flushJobs();
        lastFlush = Math.floor(next.at);
        if (next.at - lastCheck >= checkEveryMs) {
          lastCheck = this.time;
          if (pred()) return true;
        }
        // Those jobs may have scheduled timers earlier than `next`: look again.
        continue;
      }
      this.fire(next);
    }
    await flushJobs();
    if (pred()) return true;
    this.time = deadline;
    await flushJobs();
    return pred();
  }

  /** Pops the heap's top (`next`) and runs it unless it was cleared. */
  private fire(next: ScheduledTimer): void {
    this.pop();
    if (!next.fn) return;
    this.time = Math.max(this.time, next.at);
    const fn = next.fn;
    next.fn = null;
    this.live--;
    this.fired++;
    fn.call(next);
  }

  private push(t: ScheduledTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p] as ScheduledTimer;
      if (parent.at < t.at || (parent.at === t.at && parent.seq < t.seq)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = t;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      const lt = h[l] as ScheduledTimer;
      if (r < n) {
        const rt = h[r] as ScheduledTimer;
        if (rt.at < lt.at || (rt.at === lt.at && rt.seq < lt.seq)) c = r;
      }
      const ct = h[c] as ScheduledTimer;
      if (last.at < ct.at || (last.at === ct.at && last.seq < ct.seq)) break;
      h[i] = ct;
      i = c;
    }
    h[i] = last;
  }
}
