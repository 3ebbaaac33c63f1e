import { VirtualClock } from '@rhizome/clock';
import { testSeed } from '@rhizome/test-support';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Awareness } from '../src/awareness';
import { BroadcastQueue } from '../src/internal/broadcast-queue';
import { DEFAULT_LAN_PROFILE, LOCAL_PROFILE, pushPullScale, resolveProfile, retransmitLimit, suspicionTimeout } from '../src/options';
import { remainingSuspicionTime, Suspicion } from '../src/suspicion';

describe('options', () => {
  it('LAN defaults equal memberlist DefaultLANConfig', () => {
    expect(DEFAULT_LAN_PROFILE).toMatchObject({
      gossipInterval: 200, gossipNodes: 3, probeInterval: 1_000, probeTimeout: 500, suspicionMult: 4,
      suspicionMaxTimeoutMult: 6, pushPullInterval: 30_000, retransmitMult: 4, indirectChecks: 3, awarenessMaxMultiplier: 8,
    });
    expect(resolveProfile(LOCAL_PROFILE)).toEqual(LOCAL_PROFILE);
  });

  it('rejects contradictions and bad values with a TypeError that names the option', () => {
    expect(() => resolveProfile(DEFAULT_LAN_PROFILE, { probeTimeout: 1_000 })).toThrow(/probeTimeout.*probeInterval/);
    expect(() => resolveProfile(DEFAULT_LAN_PROFILE, { gossipNodes: 0 })).toThrow(TypeError);
    expect(() => resolveProfile(DEFAULT_LAN_PROFILE, { gossipInterval: -1 })).toThrow(/gossipInterval/);
    expect(() => resolveProfile(DEFAULT_LAN_PROFILE, { userEventSizeLimit: 1 << 20 })).toThrow(/maxFrameSize/);
    expect(() => resolveProfile(DEFAULT_LAN_PROFILE, { bogus: 1 } as never)).toThrow(/unknown option "bogus"/);
    expect(() => resolveProfile(DEFAULT_LAN_PROFILE, { gossipBudget: 64 * 1024 })).toThrow(/gossipBudget/);
  });

  it('scales like memberlist', () => {
    expect(retransmitLimit(4, 1)).toBe(4);
    expect(retransmitLimit(4, 20)).toBe(8);
    expect(retransmitLimit(4, 1_000)).toBe(16);
    expect(suspicionTimeout(4, 5, 1_000)).toBe(4_000);
    expect(suspicionTimeout(4, 100, 1_000)).toBe(8_000);
    expect(pushPullScale(30_000, 32)).toBe(30_000);
    expect(pushPullScale(30_000, 33)).toBe(60_000);
    expect(pushPullScale(30_000, 1_000)).toBe(180_000);
  });
});

const NO_EVIDENCE = { evidence: false, needed: 2, timeout: 100 };

describe('Lifeguard suspicion timer', () => {
  it('property: remaining time never goes below min, and falls as confirmations grow', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 100, max: 10_000 }), fc.integer({ min: 1, max: 8 }), (k, min, mult) => {
        const max = min * mult;
        let prev = Infinity;
        for (let n = 0; n <= k + 2; n++) {
          const t = remainingSuspicionTime(n, k, 0, min, max);
          expect(t).toBeGreaterThanOrEqual(min);
          expect(t).toBeLessThanOrEqual(max);
          expect(t).toBeLessThanOrEqual(prev);
          prev = t;
        }
        expect(remainingSuspicionTime(k, k, 0, min, max)).toBe(min);
      }),
    );
  });

  it('fires at max without confirmations, at min with k independent ones; repeats do not count', async () => {
    const clock = new VirtualClock();
    let firedAt = -1;
    const s = new Suspicion('a', 2, 1_000, 6_000, clock, NO_EVIDENCE, () => (firedAt = clock.now()));
    await clock.advance(500);
    expect(s.confirm('a')).toBe(false); // the original accuser
    expect(s.confirm('b')).toBe(true);
    expect(s.confirm('b')).toBe(false);
    expect(s.confirm('c')).toBe(true);
    expect(s.confirm('d')).toBe(false); // k reached
    await clock.advance(10_000);
    expect(firedAt).toBe(1_000);
    let lateFire = -1;
    new Suspicion('a', 2, 1_000, 6_000, clock, NO_EVIDENCE, () => (lateFire = clock.now()));
    const start = clock.now();
    await clock.advance(10_000);
    expect(lateFire - start).toBe(6_000);
  });
});

describe('stream evidence in the suspicion timer', () => {
  it('two independent refusals cut the wait to the evidence timeout, never extending it', async () => {
    const clock = new VirtualClock();
    let firedAt = -1;
    const s = new Suspicion('a', 2, 1_000, 6_000, clock, { evidence: true, needed: 2, timeout: 200 }, () => (firedAt = clock.now()));
    await clock.advance(50);
    expect(s.confirm('a', true)).toBe(false); // same witness
    expect(s.confirm('b', true)).toBe(true); // second witness: deadline now 50 + 200
    await clock.advance(1_000);
    expect(firedAt).toBe(250);
  });

  it('accusations without evidence never take the short path', async () => {
    const clock = new VirtualClock();
    let firedAt = -1;
    const s = new Suspicion('a', 2, 1_000, 6_000, clock, { evidence: false, needed: 2, timeout: 200 }, () => (firedAt = clock.now()));
    s.confirm('b', false);
    s.confirm('c', true); // one witness only
    await clock.advance(10_000);
    expect(firedAt).toBe(1_000);
  });
});

describe('Awareness', () => {
  it('stays within [0, max-1] and scales timeouts by score + 1', () => {
    const a = new Awareness(8);
    a.applyDelta(-5);
    expect(a.getHealthScore()).toBe(0);
    a.applyDelta(100);
    expect(a.getHealthScore()).toBe(7);
    expect(a.scaleTimeout(100)).toBe(800);
  });
});

describe('BroadcastQueue', () => {
  it('sends each broadcast at most limit times, fewest-sent and newest first, and calls onDone', () => {
    const q = new BroadcastQueue(() => 3);
    const done: string[] = [];
    q.queue({ key: 'a', msg: 'a', size: 10, onDone: () => done.push('a') });
    q.queue({ key: 'b', msg: 'b', size: 10, onDone: () => done.push('b') });
    expect(q.take(1_000)).toEqual(['b', 'a']);
    q.queue({ key: 'c', msg: 'c', size: 10 });
    expect(q.take(15)).toEqual(['c']); // budget: one fits; the unsent one goes first
    expect(q.take(1_000)).toEqual(['c', 'b', 'a']);
    expect(done).toEqual([]);
    expect(q.take(1_000)).toEqual(['c', 'b', 'a']); // third time for all three
    expect(done.sort()).toEqual(['a', 'b']);
    expect(q.take(1_000)).toEqual([]);
    expect(q.length).toBe(0);
  });

  it('newer news about the same key replaces the old (and finishes it)', () => {
    const q = new BroadcastQueue(() => 5);
    let oldDone = false;
    q.queue({ key: 'n1', msg: 'old', size: 1, onDone: () => (oldDone = true) });
    q.queue({ key: 'n1', msg: 'new', size: 1 });
    q.queue({ key: null, msg: 'x', size: 1 });
    q.queue({ key: null, msg: 'y', size: 1 });
    expect(oldDone).toBe(true);
    expect(q.take(100).sort()).toEqual(['new', 'x', 'y']);
  });

  it('stays bounded, dropping the most-sent first', () => {
    const q = new BroadcastQueue(() => 100, 10);
    for (let i = 0; i < 50; i++) q.queue({ key: null, msg: i, size: 1 });
    expect(q.length).toBe(10);
    expect((q.take(1_000) as number[]).sort((a, b) => a - b)).toEqual([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
  });

  it('makes exactly the choices of the eager reference queue (lazy removal, early stop)', () => {
    // The queue before lazy removal and the early stop: indexOf + splice, a walk over every entry.
    class Reference {
      entries: { key: string | null; msg: number; size: number; transmits: number; id: number }[] = [];
      nextId = 0;
      constructor(
        readonly limit: number,
        readonly max: number,
        readonly done: number[],
      ) {}
      queue(key: string | null, msg: number, size: number): void {
        const old = key === null ? -1 : this.entries.findIndex((e) => e.key === key);
        if (old >= 0) this.done.push(this.entries.splice(old, 1)[0]!.msg);
        this.entries.push({ key, msg, size, transmits: 0, id: this.nextId++ });
        if (this.entries.length > this.max) {
          this.sort();
          for (const d of this.entries.splice(this.max)) this.done.push(d.msg);
        }
      }
      take(budget: number): number[] {
        this.sort();
        const out: number[] = [];
        let used = 0;
        for (const e of [...this.entries]) {
          if (used + e.size + 2 > budget) continue;
          used += e.size + 2;
          out.push(e.msg);
          if (++e.transmits >= this.limit) {
            this.entries.splice(this.entries.indexOf(e), 1);
            this.done.push(e.msg);
          }
        }
        return out;
      }
      sort(): void {
        this.entries.sort((a, b) => a.transmits - b.transmits || b.id - a.id);
      }
    }
    const op = fc.oneof(
      fc.record({ kind: fc.constant('queue' as const), key: fc.option(fc.integer({ min: 0, max: 40 }), { nil: null }), size: fc.integer({ min: 4, max: 80 }) }),
      fc.record({ kind: fc.constant('take' as const), budget: fc.integer({ min: 0, max: 400 }) }),
    );
    const seed = testSeed('RHIZOME_QUEUE_SEED', 'broadcast queue equivalence');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 5, max: 200 }), fc.array(op, { maxLength: 600 }), (limit, max, ops) => {
        const doneQ: number[] = [];
        const doneR: number[] = [];
        const q = new BroadcastQueue(() => limit, max);
        const r = new Reference(limit, max, doneR);
        ops.forEach((o, msg) => {
          if (o.kind === 'queue') {
            const key = o.key === null ? null : `k${o.key}`;
            q.queue({ key, msg, size: o.size, onDone: () => doneQ.push(msg) });
            r.queue(key, msg, o.size);
          } else {
            expect(q.take(o.budget)).toEqual(r.take(o.budget));
          }
          expect(q.length).toBe(r.entries.length);
        });
        expect(doneQ).toEqual(doneR);
      }),
      { seed, numRuns: 200 },
    );
  });
});
