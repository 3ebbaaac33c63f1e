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
 *
 * The queue is a calendar: one unsorted bucket per virtual millisecond (a
 * push), and a small heap of the milliseconds that have a bucket. A bucket
 * is sorted by (time, seq) once, when time reaches it. A simulation keeps
 * hundreds of thousands of frames in flight (those to a slowed member for
 * seconds) and fires a few hundred per millisecond: a binary heap over all
 * of them cost ~2 × 17 comparisons per timer, a tenth of a large
 * simulation's CPU. The firing order is exactly the heap's.
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

/** Firing order: time, then scheduling order. */
const earlier = (a: ScheduledTimer, b: ScheduledTimer): number => a.at - b.at || a.seq - b.seq;

export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  /** Timers by virtual millisecond (floor of `at`), unsorted, except the one being drained. */
  private readonly buckets = new Map<number, ScheduledTimer[]>();
  /** Min-heap of the keys of `buckets`. */
  private readonly keys: number[] = [];
  /** The bucket being drained, sorted; `cur[curAt]` fires next. */
  private cur: ScheduledTimer[] = [];
  private curAt = 0;
  /** The millisecond `cur` holds (its later arrivals are inserted in order). */
  private curKey = -Infinity;
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
    const key = Math.floor(t.at);
    if (key === this.curKey) {
      // Into the bucket being drained: after every timer due no later (its seq is the highest).
      const cur = this.cur;
      let lo = this.curAt;
      let hi = cur.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((cur[mid] as ScheduledTimer).at <= t.at) lo = mid + 1;
        else hi = mid;
      }
      if (lo === cur.length) cur.push(t);
      else cur.splice(lo, 0, t);
      return;
    }
    if (key < this.curKey) {
      // Earlier than the loaded bucket (time had not reached it yet): put that one back, reload later.
      if (this.curAt < this.cur.length) this.file(this.curKey, this.cur.slice(this.curAt));
      this.cur = [];
      this.curAt = 0;
      this.curKey = -Infinity;
    }
    const bucket = this.buckets.get(key);
    if (bucket === undefined) this.file(key, [t]);
    else bucket.push(t);
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
      const next = this.peek();
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
      const next = this.peek();
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

  /** The next timer in firing order (cleared ones included), or undefined. */
  private peek(): ScheduledTimer | undefined {
    while (this.curAt >= this.cur.length) {
      const key = this.popKey();
      if (key === undefined) return undefined;
      const bucket = this.buckets.get(key) as ScheduledTimer[];
      this.buckets.delete(key);
      bucket.sort(earlier);
      this.cur = bucket;
      this.curAt = 0;
      this.curKey = key;
    }
    return this.cur[this.curAt];
  }

  /** Takes `next` (what peek returned) off the queue and runs it unless it was cleared. */
  private fire(next: ScheduledTimer): void {
    this.curAt++;
    if (!next.fn) return;
    this.time = Math.max(this.time, next.at);
    const fn = next.fn;
    next.fn = null;
    this.live--;
    this.fired++;
    fn.call(next);
  }

  /** A new bucket for millisecond `key` (none there yet). */
  private file(key: number, bucket: ScheduledTimer[]): void {
    this.buckets.set(key, bucket);
    const h = this.keys;
    let i = h.length;
    h.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p] as number;
      if (parent <= key) break;
      h[i] = parent;
      i = p;
    }
    h[i] = key;
  }

  private popKey(): number | undefined {
    const h = this.keys;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (h[r] as number) < (h[l] as number) ? r : l;
      if (last <= (h[c] as number)) break;
      h[i] = h[c] as number;
      i = c;
    }
    h[i] = last;
    return top;
  }
}
