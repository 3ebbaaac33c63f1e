import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/virtual-clock';

describe('VirtualClock', () => {
  it('fires timers in time order, ties in scheduling order, and stops at the deadline', async () => {
    const clock = new VirtualClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('c'), 30);
    clock.setTimeout(() => fired.push('a'), 10);
    clock.setTimeout(() => fired.push('b1'), 20);
    clock.setTimeout(() => fired.push('b2'), 20);
    const cancelled = clock.setTimeout(() => fired.push('x'), 15);
    clock.clearTimeout(cancelled);
    await clock.advance(25);
    expect(fired).toEqual(['a', 'b1', 'b2']);
    expect(clock.now()).toBe(25);
    await clock.advance(10);
    expect(fired).toEqual(['a', 'b1', 'b2', 'c']);
  });

  it('runs timers scheduled from promise jobs before later ones (regression: such timers were lost)', async () => {
    const clock = new VirtualClock();
    const fired: number[] = [];
    clock.setTimeout(() => {
      void Promise.resolve().then(() => clock.setTimeout(() => fired.push(1), 1));
    }, 10);
    clock.setTimeout(() => fired.push(2), 50);
    await clock.advance(100);
    expect(fired).toEqual([1, 2]);
  });

  it('runUntil stops as soon as the predicate holds', async () => {
    const clock = new VirtualClock();
    let n = 0;
    const tick = (): void => {
      n++;
      clock.setTimeout(tick, 10);
    };
    clock.setTimeout(tick, 10);
    expect(await clock.runUntil(() => n >= 5, 1_000)).toBe(true);
    expect(clock.now()).toBeLessThan(70);
    expect(await clock.runUntil(() => n >= 1_000, 100)).toBe(false);
    expect(clock.now()).toBeGreaterThanOrEqual(150);
  });

  it('advanceSync fires due timers at their own instants, including ones they set, without yielding', () => {
    const clock = new VirtualClock(1_000);
    const seen: Array<[string, number]> = [];
    clock.setTimeout(() => {
      seen.push(['a', clock.now()]);
      clock.setTimeout(() => seen.push(['a+5', clock.now()]), 5);
    }, 10);
    clock.setTimeout(() => seen.push(['late', clock.now()]), 100);
    let jobRan = false;
    void Promise.resolve().then(() => (jobRan = true));
    clock.advanceSync(20);
    expect(seen).toEqual([
      ['a', 1_010],
      ['a+5', 1_015],
    ]);
    expect(clock.now()).toBe(1_020);
    expect(jobRan).toBe(false);
    expect(clock.pending).toBe(1);
  });

  it('pending counts live timers: cleared and fired ones leave it, clearing twice is harmless', () => {
    const clock = new VirtualClock();
    const a = clock.setTimeout(() => {}, 5);
    clock.setTimeout(() => {}, 10);
    expect(clock.pending).toBe(2);
    clock.clearTimeout(a);
    clock.clearTimeout(a);
    expect(clock.pending).toBe(1);
    clock.advanceSync(10);
    expect(clock.pending).toBe(0);
    expect(clock.fired).toBe(1);
  });

  it('schedule runs a caller-built timer with itself as `this`, never in the past', () => {
    const clock = new VirtualClock(50);
    const got: number[] = [];
    clock.schedule({
      at: 10,
      seq: 0,
      fn() {
        got.push(this.at);
      },
    });
    clock.advanceSync(0);
    expect(got).toEqual([50]);
  });
});
