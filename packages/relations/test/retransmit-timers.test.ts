/** A link's retransmission timer (src/internal/retransmit-timers.ts) on a virtual clock: backoff, pause, reset, stop. */
import { VirtualClock } from '@rhizome/clock';
import { describe, expect, it } from 'vitest';
import { RetransmitTimers } from '../src/internal/retransmit-timers';

const OPTIONS = { baseMs: 100, maxMs: 500, window: 32, syncIntervalMs: 30_000 };

function setup() {
  const clock = new VirtualClock();
  const fired: number[] = [];
  let live = true;
  const timers = new RetransmitTimers(
    clock,
    OPTIONS,
    () => live,
    // As the link sender does: every firing resends and arms again.
    (id) => {
      fired.push(clock.now());
      timers.arm(id);
    },
  );
  return { clock, fired, timers, stopLive: () => void (live = false) };
}

describe('RetransmitTimers', () => {
  it('fires at the base delay, then doubles it up to the cap', () => {
    const { clock, fired, timers } = setup();
    timers.arm('r|u/1');
    clock.advanceSync(2_000);
    // 100, then +200, +400, then +500 (capped) each time.
    expect(fired).toEqual([100, 300, 700, 1200, 1700]);
  });

  it('arming an armed link changes nothing; a paused one fires no more until armed again, at the delay it had', () => {
    const { clock, fired, timers } = setup();
    timers.arm('l');
    timers.arm('l');
    clock.advanceSync(150);
    expect(fired).toEqual([100]);
    timers.pause('l');
    clock.advanceSync(1_000);
    expect(fired).toEqual([100]);
    timers.arm('l');
    clock.advanceSync(200);
    expect(fired).toEqual([100, 1350]);
  });

  it('a reset backoff starts again from the base delay', () => {
    const { clock, fired, timers } = setup();
    timers.arm('l');
    clock.advanceSync(700);
    expect(fired).toEqual([100, 300, 700]);
    timers.pause('l');
    timers.resetBackoff('l');
    timers.arm('l');
    clock.advanceSync(100);
    expect(fired).toEqual([100, 300, 700, 800]);
  });

  it('nothing fires once the manager stopped, or after stop() and forget()', () => {
    const a = setup();
    a.timers.arm('l');
    a.stopLive();
    a.clock.advanceSync(1_000);
    expect(a.fired).toEqual([]);

    const b = setup();
    b.timers.arm('x');
    b.timers.arm('y');
    expect([...b.timers.ids()].sort()).toEqual(['x', 'y']);
    b.timers.forget('x');
    expect([...b.timers.ids()]).toEqual(['y']);
    b.timers.stop();
    expect([...b.timers.ids()]).toEqual([]);
    b.clock.advanceSync(1_000);
    expect(b.fired).toEqual([]);
    expect(b.clock.pending).toBe(0);
  });
});
