/**
 * Bursts converge in one pass: relation events waiting in the inbox behind
 * one at its head are applied in that same run (one transaction), every
 * event's handlers still run, and a fact-only handler that renders the
 * relation runs once for the burst. A failure rolls the whole burst back.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '@rhizome/clock';
import { Engine, factsOf, fact, internalEvent, relationEvent, type EngineEvent, type HandlerSpec } from '../src/index';

function changed(unit: string): EngineEvent {
  return { kind: 'relation', endpoint: 'backends', name: 'changed', unit, keys: ['port'] };
}

describe('bursts of relation events', () => {
  it('apply in one run: each event handler runs, the fact-only renderer once', async () => {
    const seen: string[] = [];
    let renders = 0;
    let gate!: () => void;
    const blocked = new Promise<void>((r) => (gate = r));
    const handlers: HandlerSpec[] = [
      { name: 'slow', when: fact('block'), run: async () => blocked },
      { name: 'on-changed', when: relationEvent('backends', 'changed'), run: (ctx) => void seen.push((ctx.event as { unit: string }).unit) },
      {
        name: 'render',
        when: fact('backend.web-0'),
        run: (ctx) => {
          renders++;
          ctx.set('rendered', ['web-0', 'web-1', 'web-2'].filter((u) => ctx.get(`backend.${u}`) !== undefined));
        },
      },
    ];
    const engine = new Engine({ handlers });
    // Hold the engine in a run while the burst arrives.
    const first = engine.submit(internalEvent('hold'), { apply: (tx) => tx.set('block', true) });
    const burst = ['web/0', 'web/1', 'web/2'].map((u) => engine.submit(changed(u), { apply: (tx) => tx.set(`backend.${u.replace('/', '-')}`, 8080) }));
    gate();
    await first;
    const reports = await Promise.all(burst);
    expect(new Set(reports.map((r) => r.runId)).size).toBe(1);
    expect(reports[0]!.batched).toEqual(['backends.changed(web/1)', 'backends.changed(web/2)']);
    expect(seen).toEqual(['web/0', 'web/1', 'web/2']);
    expect(renders).toBe(1);
    expect(factsOf(engine.knowledge)['rendered']).toEqual(['web-0', 'web-1', 'web-2']);
  });

  it('takes internal events submitted to ride along into the burst; any other internal event ends it', async () => {
    const runWith = async (rideAlong: boolean): Promise<string[]> => {
      let gate!: () => void;
      const blocked = new Promise<void>((r) => (gate = r));
      const engine = new Engine({ handlers: [{ name: 'slow', when: fact('block'), run: async () => blocked }] });
      const first = engine.submit(internalEvent('hold'), { apply: (tx) => tx.set('block', true) });
      const queued = [
        engine.submit(changed('web/0'), { apply: (tx) => tx.set('backend.web-0', 1) }),
        engine.submit(internalEvent('link-bookkeeping'), { apply: (tx) => tx.set('bookkept', true), rideAlong }),
        engine.submit(changed('web/1'), { apply: (tx) => tx.set('backend.web-1', 1) }),
      ];
      gate();
      await first;
      const reports = await Promise.all(queued);
      expect(factsOf(engine.knowledge)['bookkept']).toBe(true);
      return reports.map((r) => r.runId);
    };
    const along = await runWith(true);
    expect(new Set(along).size).toBe(1);
    const apart = await runWith(false);
    expect(new Set(apart).size).toBe(3);
  });

  it('is all or nothing: a failing handler rolls back every event of the burst, and the retry applies them again', async () => {
    let fail = true;
    let gate!: () => void;
    const blocked = new Promise<void>((r) => (gate = r));
    const engine = new Engine({
      handlers: [
        { name: 'slow', when: fact('block'), run: async () => blocked },
        {
          name: 'picky',
          when: relationEvent('backends', 'changed'),
          run: (ctx) => {
            if (fail && (ctx.event as { unit: string }).unit === 'web/2') throw new Error('web/2 is bad');
          },
        },
      ],
      retry: { limit: 5, baseMs: 1, maxMs: 2 },
    });
    const first = engine.submit(internalEvent('hold'), { apply: (tx) => tx.set('block', true) });
    const burst = ['web/0', 'web/1', 'web/2'].map((u) => engine.submit(changed(u), { apply: (tx) => tx.set(`backend.${u.replace('/', '-')}`, 1) }));
    gate();
    await first;
    await new Promise<void>((resolve) => {
      const off = engine.onReport((r) => {
        if (r.outcome === 'failed') {
          expect(Object.keys(factsOf(engine.knowledge)).filter((k) => k.startsWith('backend.'))).toEqual([]);
          fail = false;
          off();
          resolve();
        }
      });
    });
    const reports = await Promise.all(burst);
    expect(reports.every((r) => r.outcome === 'committed')).toBe(true);
    expect(Object.keys(factsOf(engine.knowledge)).filter((k) => k.startsWith('backend.')).sort()).toEqual(['backend.web-0', 'backend.web-1', 'backend.web-2']);
  });
});

describe('the burst window', () => {
  it('a relation event at the head waits for the rest of its burst (quiet period), then one run applies them all', async () => {
    let renders = 0;
    const engine = new Engine({
      handlers: [{ name: 'render', when: fact('backend.web-0'), run: () => void renders++ }],
      burst: { quietMs: 80, maxMs: 2_000 },
    });
    const reports = [];
    for (const u of ['web/0', 'web/1', 'web/2']) {
      reports.push(engine.submit(changed(u), { apply: (tx) => tx.set(`backend.${u.replace('/', '-')}`, 1) }));
      await new Promise((r) => setTimeout(r, 20));
    }
    const done = await Promise.all(reports);
    expect(new Set(done.map((r) => r.runId)).size).toBe(1);
    expect(renders).toBe(1);
    // an internal event is never held back
    const t0 = Date.now();
    await engine.submit(internalEvent('now'));
    expect(Date.now() - t0).toBeLessThan(60);
    expect(() => new Engine({ handlers: [], burst: { quietMs: 10, maxMs: 5 } })).toThrow(/burst must be/);
  });

  it('does not hold back an event submitted with gather: false (a link backlog), only one that gathers', async () => {
    const clock = new VirtualClock();
    const engine = new Engine({ handlers: [], clock, burst: { quietMs: 200, maxMs: 1_500 } });
    // Whether p settles within 50 ms of real time. While virtual time stands still a
    // held-back run can only wait, so a quiet interval is what shows it waits.
    const settled = (p: Promise<unknown>): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))]);
    // Virtual time stands still: a backlog message runs at once, with no clock advance.
    expect(await settled(engine.submit(changed('web/0'), { apply: (tx) => tx.set('backend.web-0', 1), gather: false }))).toBe(true);
    // The default still waits for its quiet period, and runs once it has passed.
    const gathering = engine.submit(changed('web/1'), { apply: (tx) => tx.set('backend.web-1', 1) });
    expect(await settled(gathering)).toBe(false);
    await clock.advance(200);
    expect(await settled(gathering)).toBe(true);
  });
});
