/**
 * `departing()`: during the run of a `departed` event a handler reads the
 * departing unit's last bag (Juju: relation-get still answers for it in
 * relation-departed), validated like `all()` entries; in any other run it is
 * undefined. Through runRelationScenario, and through the RelationManager
 * over the simulated link network, with a failing handler, retries and an
 * agent restart between the departure and the successful run.
 */
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { defineHandler, event, internalEvent, relationEvent, relationFact, type HandlerSpec, type Json } from '@rhizome/engine';
import { http } from './interfaces/http';
import { relation, type DepartingBag } from '../src/relation';
import { runRelationScenario, type EndpointFixture } from '../src/testing';
import { SimCluster, counter, dstMeta, srcMeta, testHandlers } from './harness';

/** A DepartingBag as a fact (plain JSON), or null when there is none. */
const asFact = (d: DepartingBag<unknown> | undefined): Json => (d === undefined ? null : (JSON.parse(JSON.stringify(d)) as Json));

describe('departing() through runRelationScenario (a load balancer dropping a web unit)', () => {
  const endpoints = (webA0: Record<string, unknown>): Record<string, EndpointFixture> => ({
    backends: {
      side: http.requirer,
      relations: {
        'rel-a': { remoteService: 'web-a', units: { 'web-a/0': webA0 as never, 'web-a/1': { host: '10.0.0.2', port: 80 } } },
        'rel-b': { remoteService: 'web-b', units: { 'web-b/0': { host: '10.0.1.1', port: 8080 } } },
      },
    },
  });
  const depart = { endpoint: 'backends', name: 'departed', relationId: 'rel-a', unit: 'web-a/0' } as const;

  let failDeparted = false;
  const handlers: HandlerSpec[] = [
    defineHandler({
      name: 'drop-backend',
      when: relationEvent('backends', 'departed'),
      run(ctx) {
        const backends = relation(ctx, 'backends', http.requirer);
        const gone = backends.departing();
        ctx.set('seen.departing', asFact(gone));
        ctx.set('seen.units', backends.units());
        ctx.set('seen.all', backends.all().map((b) => b.unit));
        if (gone?.status === 'ok') {
          expectTypeOf(gone.data.port).toEqualTypeOf<number>();
          ctx.set('lb.removed', `${gone.data.host}:${gone.data.port}`);
        }
        if (failDeparted) throw new Error('haproxy reload failed (injected)');
      },
    }),
    defineHandler({
      // A fact handler the departure makes due runs in the same run: it sees the departing unit too.
      name: 'render-config',
      when: relationFact('backends', 'available'),
      run(ctx) {
        ctx.set('seen.render-departing', relation(ctx, 'backends', http.requirer).departing()?.unit ?? null);
      },
    }),
    defineHandler({
      name: 'note-other-events',
      when: [relationEvent('backends', 'changed')],
      run(ctx) {
        ctx.set('seen.changed-departing', asFact(relation(ctx, 'backends', http.requirer).departing()));
      },
    }),
    defineHandler({
      name: 'note-internal',
      when: event('probe'),
      run(ctx) {
        ctx.set('seen.probe-departing', asFact(relation(ctx, 'backends', http.requirer).departing()));
      },
    }),
  ];

  afterEach(() => {
    failDeparted = false;
  });

  it('a departed handler reads the departed unit’s last published bag, typed; the unit is no longer joined', async () => {
    const out = await runRelationScenario({ handlers, unit: 'lb/0', endpoints: endpoints({ host: '10.0.0.1', port: 80 }), event: depart });
    expect(out.committed).toBe(true);
    expect(out.facts['seen.departing']).toEqual({ unit: 'web-a/0', relationId: 'rel-a', status: 'ok', data: { host: '10.0.0.1', port: 80 } });
    expect(out.facts['lb.removed']).toBe('10.0.0.1:80');
    expect(out.facts['seen.units']).toEqual(['web-a/1', 'web-b/0']);
    expect(out.facts['seen.all']).toEqual(['web-a/1', 'web-b/0']);
    expect(out.facts['seen.render-departing']).toBe('web-a/0');
    expect(out.state('backends')!.relations['rel-a']!.units['web-a/0']).toBeUndefined();
    expect(out.state('backends')!.relations['rel-a']!.departed).toEqual(['web-a/0']);
  });

  it('outside a departed run it is undefined: internal events, changed events, and the runs after the departure', async () => {
    const probe = await runRelationScenario({ handlers, unit: 'lb/0', endpoints: endpoints({ host: '10.0.0.1', port: 80 }), event: internalEvent('probe') });
    expect(probe.facts['seen.probe-departing']).toBeNull();
    const changed = await runRelationScenario({
      handlers,
      unit: 'lb/0',
      endpoints: endpoints({ host: '10.0.0.1', port: 80 }),
      event: { endpoint: 'backends', name: 'changed', relationId: 'rel-a', unit: 'web-a/0', data: { host: '10.0.0.9', port: 81 } },
    });
    expect(changed.facts['seen.changed-departing']).toBeNull();
    expect(changed.facts['seen.render-departing']).toBeNull();
    const departed = await runRelationScenario({ handlers, unit: 'lb/0', endpoints: endpoints({ host: '10.0.0.1', port: 80 }), event: depart });
    const after = await runRelationScenario({ handlers, unit: 'lb/0', kb: departed.kb, endpoints: endpoints({}), event: internalEvent('probe') });
    expect(after.committed).toBe(true);
    expect(after.facts['seen.probe-departing']).toBeNull();
  });

  it('a departed event of another endpoint is not this endpoint’s departure', async () => {
    const two: Record<string, EndpointFixture> = {
      ...endpoints({ host: '10.0.0.1', port: 80 }),
      frontend: { side: http.provider, relations: { 'rel-f': { remoteService: 'client', units: { 'client/0': {} } } } },
    };
    const h = defineHandler({
      name: 'frontend-departed',
      when: relationEvent('frontend', 'departed'),
      run(ctx) {
        ctx.set('seen.backends', asFact(relation(ctx, 'backends', http.requirer).departing()));
        ctx.set('seen.frontend', asFact(relation(ctx, 'frontend', http.provider).departing()));
      },
    });
    const out = await runRelationScenario({ handlers: [h], unit: 'lb/0', endpoints: two, event: { endpoint: 'frontend', name: 'departed', unit: 'client/0' } });
    expect(out.facts['seen.backends']).toBeNull();
    // The client's side publishes nothing (z.object({})): its empty bag is complete.
    expect(out.facts['seen.frontend']).toEqual({ unit: 'client/0', relationId: 'rel-f', status: 'ok', data: {} });
  });

  it('last data that violated the interface is reported as invalid, never returned as data; incomplete data says what is missing', async () => {
    const invalid = await runRelationScenario({ handlers, unit: 'lb/0', endpoints: endpoints({ host: '10.0.0.1', port: 'eighty' }), event: depart });
    expect(invalid.committed).toBe(true);
    const seen = invalid.facts['seen.departing'] as { status: string; data?: unknown; error: { unit: string; relationId: string; keys: string[]; problems: string[] } };
    expect(seen).toMatchObject({ unit: 'web-a/0', relationId: 'rel-a', status: 'invalid', error: { unit: 'web-a/0', relationId: 'rel-a', keys: ['port'] } });
    expect(seen.data).toBeUndefined();
    expect(seen.error.problems.join(' ')).toMatch(/port: .*got "eighty"/);
    expect(invalid.facts['lb.removed']).toBeUndefined();

    const incomplete = await runRelationScenario({ handlers, unit: 'lb/0', endpoints: endpoints({ host: '10.0.0.1' }), event: depart });
    expect(incomplete.facts['seen.departing']).toEqual({ unit: 'web-a/0', relationId: 'rel-a', status: 'incomplete', missingKeys: ['port'] });
    expect(incomplete.facts['lb.removed']).toBeUndefined();
  });

  it('a failed departed handler rolls back (the unit stays joined) and the retry still sees the last bag', async () => {
    failDeparted = true;
    const failed = await runRelationScenario({ handlers, unit: 'lb/0', endpoints: endpoints({ host: '10.0.0.1', port: 80 }), event: depart });
    expect(failed.committed).toBe(false);
    expect(failed.facts['lb.removed']).toBeUndefined();
    expect(failed.state('backends')!.relations['rel-a']!.units['web-a/0']!.bag).toEqual({ host: '10.0.0.1', port: 80 });
    failDeparted = false;
    const retried = await runRelationScenario({ handlers, unit: 'lb/0', kb: failed.kb, endpoints: endpoints({}), event: depart });
    expect(retried.committed).toBe(true);
    expect(retried.facts['lb.removed']).toBe('10.0.0.1:80');
  });
});

describe('departing() through the RelationManager over the simulated link network', () => {
  let cluster: SimCluster | undefined;
  afterEach(() => {
    for (const u of cluster?.units.values() ?? []) u.crash();
    cluster = undefined;
  });

  /** dst's charm: the test handlers, plus a departed handler that records what departing() says (and may fail). */
  function dstHandlers(hooks: { failDeparted: () => boolean }): HandlerSpec[] {
    return [
      ...testHandlers(dstMeta),
      defineHandler({
        name: 'forget-source',
        when: relationEvent('in', 'departed'),
        run(ctx) {
          const input = relation(ctx, 'in', counter.requirer);
          const gone = input.departing();
          if (hooks.failDeparted()) throw new Error('cannot rewrite the config (injected)');
          ctx.set('seen.departing', asFact(gone));
          ctx.set('seen.units', input.units());
        },
      }),
      defineHandler({
        name: 'probe',
        when: event('probe'),
        run(ctx) {
          ctx.set('seen.probe', asFact(relation(ctx, 'in', counter.requirer).departing()));
        },
      }),
    ];
  }

  async function setUp(seed: number, failDeparted: () => boolean) {
    const c = (cluster = new SimCluster(seed));
    const s0 = c.add('src/0', srcMeta);
    const s1 = c.add('src/1', srcMeta);
    const d0 = c.add('dst/0', dstMeta, dstHandlers({ failDeparted }));
    await c.relate('rel-1', [s0, s1], 'out', [d0], 'in');
    await s0.publish('out', 7);
    await s1.publish('out', 8);
    expect(await c.until(() => d0.state('in')?.relations['rel-1']?.units['src/0']?.version === 1 && d0.state('in')?.relations['rel-1']?.units['src/1']?.version === 1, 5_000)).toBe(true);
    return { c, s0, s1, d0 };
  }

  const lastOfSrc0 = { unit: 'src/0', relationId: 'rel-1', status: 'ok', data: { value: 7, owner: 'src/0' } };

  it('a departed handler reads the last value the departed unit published; other runs see undefined', async () => {
    const { c, d0 } = await setUp(21, () => false);
    await d0.engine.submit(internalEvent('probe'));
    expect(d0.fact('seen.probe')).toBeNull();

    const report = await d0.manager.unitDeparted('rel-1', 'src/0');
    expect(report?.outcome).toBe('committed');
    expect(d0.fact('seen.departing')).toEqual(lastOfSrc0);
    expect(d0.fact('seen.units')).toEqual(['src/1']);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']).toBeUndefined();

    await d0.engine.submit(internalEvent('probe'));
    expect(d0.fact('seen.probe')).toBeNull();
    expect(c.errors).toEqual([]);
  });

  it('a failing departed handler rolls back; the engine’s retry after resolve() still sees the last bag', async () => {
    let broken = true;
    const { c, d0 } = await setUp(22, () => broken);
    const departed = d0.manager.unitDeparted('rel-1', 'src/0');
    await c.tick(2_000);
    expect(d0.engine.status()).toMatchObject({ state: 'error', error: { handler: 'forget-source', attempts: 3 } });
    // Rolled back: the unit is still joined with its bag, nothing recorded.
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!.bag).toEqual({ value: 7, owner: 'src/0' });
    expect(d0.fact('seen.departing')).toBeUndefined();

    broken = false;
    d0.engine.resolve();
    await c.tick(200);
    expect(await departed).toMatchObject({ outcome: 'committed' });
    const runs = d0.engine.history().filter((r) => r.eventLabel === 'in.departed(src/0)');
    expect(runs.map((r) => r.outcome)).toEqual(['failed', 'failed', 'failed', 'committed']);
    expect(d0.fact('seen.departing')).toEqual(lastOfSrc0);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']).toBeUndefined();
  });

  it('an agent restart between the failed departure and its retry: the departure is re-submitted from the durable view', async () => {
    let broken = true;
    const { c, d0 } = await setUp(23, () => broken);
    const departed = d0.manager.unitDeparted('rel-1', 'src/0');
    departed.catch(() => undefined);
    await c.tick(2_000);
    expect(d0.engine.status().state).toBe('error');

    // The agent restarts; the durable knowledge base still has src/0 joined (the departed run never committed).
    c.get('src/0').crash();
    c.membership.set('dst/0', (c.membership.get('dst/0') ?? []).filter(([, unit]) => unit !== 'src/0'));
    broken = false;
    d0.restart();
    await c.tick(100);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!.bag).toEqual({ value: 7, owner: 'src/0' });
    // The agent's reconciliation sees src/0 gone from the mesh and departs it again.
    const report = await d0.manager.unitDeparted('rel-1', 'src/0');
    expect(report?.outcome).toBe('committed');
    expect(d0.fact('seen.departing')).toEqual(lastOfSrc0);
    expect(d0.fact('seen.units')).toEqual(['src/1']);
  });

  it('last data that violated the interface reaches the departed handler as invalid, not as data', async () => {
    const { c, d0 } = await setUp(24, () => false);
    const inc = c.get('src/0').state('out')!.incarnation;
    const epoch = (d0.kb.relations['@links'] as Record<string, { epoch: number }>)['rel-1|src/0']!.epoch;
    // src/0 misbehaves: a bag the interface refuses, newer than its last good one (in a new link epoch, so it is not taken for a duplicate).
    c.get('src/0').crash();
    const rogue = c.net.attach('src/0');
    rogue.send('dst/0', { v: 1, type: 'data', rel: 'rel-1', from: 'src/0', to: 'dst/0', epoch: epoch + 1, inc, seq: 1, base: 1, version: 9, bag: { value: 'lots', owner: 'src/0' } });
    expect(await c.until(() => d0.state('in')!.relations['rel-1']!.units['src/0']!.status === 'invalid', 2_000)).toBe(true);
    await d0.manager.unitDeparted('rel-1', 'src/0');
    expect(d0.fact('seen.departing')).toMatchObject({ unit: 'src/0', relationId: 'rel-1', status: 'invalid', error: { keys: ['value'] } });
    expect((d0.fact('seen.departing') as { data?: unknown }).data).toBeUndefined();
  });
});
