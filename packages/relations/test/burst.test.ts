/**
 * Bursts converge in one pass, at the relations level (issue 14): the
 * `joined` of several remote units and their first data, all waiting in the
 * engine's inbox, are applied in ONE run, and a fact-only renderer (the lb
 * charm's configure-nginx, here `render`) runs once for the burst and sees
 * every unit's data. Each event's handlers still run.
 */
import { describe, expect, it } from 'vitest';
import { defineHandler, fact, relationEvent, type HandlerSpec, type Json, type RunReport } from '@rhizome/engine';
import { relation } from '../src/relation';
import { counter, dstMeta, SimCluster, srcMeta, testHandlers, viewMismatches, type SimUnit } from './harness';

const UNITS = ['src/0', 'src/1', 'src/2'];

/** The dst charm of the lb's shape: each relation event recomputes `backends`; `render` runs on that fact. */
function renderingHandlers(gate?: Promise<void>): { handlers: HandlerSpec[]; renders: string[][]; seen: string[] } {
  const renders: string[][] = [];
  const seen: string[] = [];
  const handlers: HandlerSpec[] = [
    ...(gate ? [defineHandler({ name: 'block', when: fact('blocked'), run: async () => gate })] : []),
    ...(['joined', 'changed'] as const).map((name) =>
      defineHandler({
        name: `backends-${name}`,
        when: relationEvent('in', name),
        run(ctx) {
          seen.push(`${name}(${ctx.event?.kind === 'relation' ? ctx.event.unit ?? '' : ''})`);
          const all = relation(ctx, 'in', counter.requirer).all();
          ctx.set('backends', all.map(({ unit, data }) => `${unit}=${data.value}`) as Json);
        },
      }),
    ),
    defineHandler({
      name: 'render',
      when: fact('backends'),
      run(ctx) {
        const backends = (ctx.get<string[]>('backends') ?? []) as string[];
        if (JSON.stringify(backends) === JSON.stringify(ctx.get('rendered') ?? [])) return;
        renders.push(backends);
        ctx.set('rendered', backends);
      },
    }),
  ];
  return { handlers, renders, seen };
}

/** dst/0 sees every src unit's data, and every src unit's messages were acked. */
function converged(c: SimCluster, d: SimUnit, srcs: readonly SimUnit[]): boolean {
  const units = d.state('in')?.relations['rel-1']?.units ?? {};
  return UNITS.every((u) => (units[u]?.version ?? 0) > 0) && viewMismatches(c).length === 0 && srcs.every((s) => s.manager.linkStatus().every((l) => l.unacked === 0));
}

function burstRuns(d: SimUnit): RunReport[] {
  return d.engine.history().filter((r) => r.event.kind === 'relation');
}

describe('a burst of joins and their first data', () => {
  it('units the mesh has not announced: their data queues joined + changed behind a busy run, applied in one run', async () => {
    const c = new SimCluster(41);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const dst = renderingHandlers(gate);
    const d0 = c.add('dst/0', dstMeta, dst.handlers);
    const srcs = UNITS.map((u) => c.add(u, srcMeta, testHandlers(srcMeta)));
    for (const s of srcs) void s.manager.addRelation({ id: 'rel-1', endpoint: 'out', remoteService: 'dst', remoteEndpoint: 'in', remoteMetadata: dstMeta });
    void d0.manager.addRelation({ id: 'rel-1', endpoint: 'in', remoteService: 'src', remoteEndpoint: 'out', remoteMetadata: srcMeta });
    await c.tick(40);
    // The mesh told the src units about dst/0, not dst/0 about them: their data is the first dst/0 hears of them.
    for (const s of srcs) void s.manager.unitJoined('rel-1', 'dst/0');
    await c.tick(40);
    // dst/0 is busy in a run while the data arrives.
    const busy = d0.engine.submit({ kind: 'internal', name: 'hold' }, { apply: (tx) => tx.set('blocked', true) });
    await c.settle();
    expect(d0.engine.status().state).toBe('running');
    await Promise.all(srcs.map((s, i) => s.publish('out', 10 + i)));
    const queued = await c.until(() => d0.engine.status().queued >= 2 * UNITS.length, 2_000);
    expect(queued, `dst/0 queued ${d0.engine.status().queued} events (want joined + changed of each unit)`).toBe(true);
    open();
    await busy;
    expect(await c.until(() => converged(c, d0, srcs), 5_000)).toBe(true);

    // One run: each unit's joined right before its changed (arrival order decides which unit comes first).
    const runs = burstRuns(d0);
    expect(runs).toHaveLength(1);
    const events = [runs[0]!.eventLabel, ...(runs[0]!.batched ?? [])];
    expect([...events].sort()).toEqual(UNITS.flatMap((u) => [`in.changed(${u})`, `in.joined(${u})`]).sort());
    for (const u of UNITS) expect(events.indexOf(`in.changed(${u})`)).toBe(events.indexOf(`in.joined(${u})`) + 1);
    expect(runs[0]!.outcome).toBe('committed');
    expect(dst.seen).toEqual(events.map((e) => e.replace('in.', '')));
    expect(dst.renders).toEqual([['src/0=10', 'src/1=11', 'src/2=12']]);
    expect(c.errors).toEqual([]);
  });

  it('units the mesh announced: with the agent-style burst window, joins and first data make one run', async () => {
    const c = new SimCluster(42);
    c.engineOptions = { burst: { quietMs: 50, maxMs: 1_000 } };
    const dst = renderingHandlers();
    const d0 = c.add('dst/0', dstMeta, dst.handlers);
    const srcs = UNITS.map((u) => c.add(u, srcMeta, testHandlers(srcMeta)));
    // Each src unit publishes as soon as it joined dst/0, as a web unit does.
    const relating = c.relate('rel-1', srcs, 'out', [d0], 'in');
    await Promise.all(srcs.map((s, i) => s.publish('out', 20 + i)));
    await relating;
    expect(await c.until(() => converged(c, d0, srcs), 5_000)).toBe(true);

    // The joins may run on their own before the data arrives (the window closed), rendering nothing;
    // the data of the three units then meets in one run, and the renderer runs once.
    const runs = burstRuns(d0);
    const label = (r: RunReport): string[] => [r.eventLabel, ...(r.batched ?? [])];
    const withData = runs.filter((r) => label(r).some((e) => e.startsWith('in.changed(')));
    expect(withData, runs.map((r) => label(r).join(' + ')).join('\n')).toHaveLength(1);
    expect(label(withData[0]!).filter((e) => e.startsWith('in.changed(')).sort()).toEqual(UNITS.map((u) => `in.changed(${u})`));
    expect(runs.every((r) => r.outcome === 'committed')).toBe(true);
    expect(dst.renders).toEqual([['src/0=20', 'src/1=21', 'src/2=22']]);
    expect(c.errors).toEqual([]);
  });
});
