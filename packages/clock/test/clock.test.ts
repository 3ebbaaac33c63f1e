import { describe, expect, it } from 'vitest';
import { BACKGROUND, KEEP_ALIVE, backgroundTimers, systemClock, type TimerHandle } from '../src/clock';
import { seededRandom } from '../src/random';
import { VirtualClock } from '../src/virtual-clock';

const node = (h: TimerHandle): NodeJS.Timeout => h as unknown as NodeJS.Timeout;

describe('systemClock', () => {
  it('keeps the process alive for due work and not for background upkeep', () => {
    const work = systemClock.setTimeout(() => {}, 60_000);
    const byDefault = systemClock.setTimeout(() => {}, 60_000, KEEP_ALIVE);
    const upkeep = systemClock.setTimeout(() => {}, 60_000, BACKGROUND);
    try {
      expect(node(work).hasRef()).toBe(true);
      expect(node(byDefault).hasRef()).toBe(true);
      expect(node(upkeep).hasRef()).toBe(false);
    } finally {
      for (const t of [work, byDefault, upkeep]) systemClock.clearTimeout(t);
    }
  });

  it('backgroundTimers marks every timer of a component as upkeep', () => {
    const clock = backgroundTimers(systemClock);
    const t = clock.setTimeout(() => {}, 60_000);
    try {
      expect(node(t).hasRef()).toBe(false);
    } finally {
      clock.clearTimeout(t);
    }
  });

  it('backgroundTimers over a virtual clock still runs on virtual time', () => {
    const virtual = new VirtualClock();
    const clock = backgroundTimers(virtual);
    let fired = false;
    clock.setTimeout(() => (fired = true), 10);
    virtual.advanceSync(10);
    expect(fired).toBe(true);
    expect(clock.now()).toBe(10);
  });
});

describe('seededRandom', () => {
  it('replays the same sequence for a seed, a different one for another, all in [0, 1)', () => {
    const take = (seed: number): number[] => {
      const r = seededRandom(seed);
      return Array.from({ length: 1_000 }, () => r());
    };
    const a = take(42);
    expect(take(42)).toEqual(a);
    expect(take(43)).not.toEqual(a);
    expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
    // Roughly uniform: the mean of 1,000 draws is near 0.5.
    expect(Math.abs(a.reduce((s, x) => s + x, 0) / a.length - 0.5)).toBeLessThan(0.05);
  });
});
