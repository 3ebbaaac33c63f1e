/**
 * Per-relation data (Juju's `relation-set -r`): a unit's bag on relation R
 * is its endpoint-wide bag overlaid with R's own keys. Exercised over the
 * relation manager and its simulated link network (the remote units' views
 * are what actually arrived), and through runRelationScenario.
 */
import { describe, expect, it } from 'vitest';
import { defineHandler, event, type HandlerSpec, type JsonObject, type Transaction } from '@rhizome/engine';
import { RelationError } from '../src/errors';
import { parseCharmMetadata } from '../src/metadata';
import { relation } from '../src/relation';
import { runRelationScenario, type EndpointFixture } from '../src/testing';
import { counter, dstMeta, sendRecordOf, SimCluster, srcMeta, viewMismatches, type SimUnit } from './harness';

/** A second service that requires `counter`, so src/0's `out` endpoint carries two relations. */
const otherMeta = parseCharmMetadata({ name: 'other', requires: { in: { interface: 'counter' } } });

async function twoRelations(): Promise<{ c: SimCluster; src: SimUnit; dst: SimUnit; other: SimUnit }> {
  const c = new SimCluster(11);
  const src = c.add('src/0', srcMeta);
  const dst = c.add('dst/0', dstMeta);
  const other = c.add('other/0', otherMeta);
  await c.relate('rel-1', [src], 'out', [dst], 'in');
  await c.relate('rel-2', [src], 'out', [other], 'in');
  return { c, src, dst, other };
}

/** What `viewer` has received from src/0 on its `in` endpoint. */
const seen = (viewer: SimUnit, relationId: string) => viewer.state('in')!.relations[relationId]!.units['src/0']!;

describe('per-relation data over the relation manager', () => {
  it('two relations of one endpoint receive different values for the same key; endpoint-wide keys reach both', async () => {
    const { c, src, dst, other } = await twoRelations();
    await src.publish('out', 1); // endpoint-wide { value: 1, owner: 'src/0' }
    await src.scoped('out', { relationId: 'rel-2', publish: { value: 2 } });
    await c.tick(200);
    expect(seen(dst, 'rel-1').bag).toEqual({ value: 1, owner: 'src/0' });
    expect(seen(other, 'rel-2').bag).toEqual({ value: 2, owner: 'src/0' });
    expect(seen(other, 'rel-2').status).toBe('ok');
    expect(viewMismatches(c)).toEqual([]);
    expect(c.errors).toEqual([]);
  });

  it('a per-relation key overrides the endpoint-wide one on that relation only, and only changed relations get a message', async () => {
    const { c, src, dst, other } = await twoRelations();
    await src.publish('out', 1);
    await src.scoped('out', { relationId: 'rel-2', publish: { value: 2 } });
    await c.tick(200);
    const seq1 = sendRecordOf(src, 'rel-1', 'dst/0')!.nextSeq;
    const seq2 = sendRecordOf(src, 'rel-2', 'other/0')!.nextSeq;
    const otherVersion = seen(other, 'rel-2').version;

    // Endpoint-wide value 5: rel-1 moves, rel-2 keeps its own value, so nothing is queued on rel-2.
    await src.publish('out', 5);
    await c.tick(200);
    expect(seen(dst, 'rel-1').bag).toEqual({ value: 5, owner: 'src/0' });
    expect(seen(other, 'rel-2').bag).toEqual({ value: 2, owner: 'src/0' });
    expect(seen(other, 'rel-2').version).toBe(otherVersion);
    expect(sendRecordOf(src, 'rel-1', 'dst/0')!.nextSeq).toBe(seq1 + 1);
    expect(sendRecordOf(src, 'rel-2', 'other/0')!.nextSeq).toBe(seq2);

    // A per-relation publish on rel-2 leaves rel-1 alone (the endpoint's counter moves, rel-1's bag does not).
    const dstVersion = seen(dst, 'rel-1').version;
    await src.scoped('out', { relationId: 'rel-2', publish: { value: 3 } });
    await c.tick(200);
    expect(seen(other, 'rel-2').bag).toEqual({ value: 3, owner: 'src/0' });
    expect(seen(dst, 'rel-1').version).toBe(dstVersion);
    expect(sendRecordOf(src, 'rel-1', 'dst/0')!.nextSeq).toBe(seq1 + 1);
    // Each relation's versions only move forward, so the receivers applied every message as newer.
    expect(seen(other, 'rel-2').version).toBeGreaterThan(otherVersion);
    expect(src.state('out')!.local.version).toBe(4);
    expect(viewMismatches(c)).toEqual([]);
  });

  it('unpublishing a per-relation key falls back to the endpoint-wide value', async () => {
    const { c, src, dst, other } = await twoRelations();
    await src.publish('out', 1);
    await src.scoped('out', { relationId: 'rel-2', publish: { value: 2 } });
    await src.publish('out', 7);
    await c.tick(200);
    expect(seen(other, 'rel-2').bag).toEqual({ value: 2, owner: 'src/0' });
    const before = seen(other, 'rel-2').version;
    await src.scoped('out', { relationId: 'rel-2', unpublish: ['value'] });
    await c.tick(200);
    expect(seen(other, 'rel-2').bag).toEqual({ value: 7, owner: 'src/0' });
    expect(seen(other, 'rel-2').version).toBeGreaterThan(before);
    expect(seen(dst, 'rel-1').bag).toEqual({ value: 7, owner: 'src/0' });
    expect(src.state('out')!.relations['rel-2']!.overlay).toBeUndefined();
    expect(viewMismatches(c)).toEqual([]);
  });

  it('a run that fails after a per-relation publish publishes nothing', async () => {
    const { c, src, other } = await twoRelations();
    await src.publish('out', 1);
    await c.tick(200);
    const seq = sendRecordOf(src, 'rel-2', 'other/0')!.nextSeq;
    const version = src.state('out')!.local.version;
    const run = src.scoped('out', { relationId: 'rel-2', publish: { value: 99 }, fail: true });
    run.catch(() => undefined);
    await c.tick(2_000); // every retry fails too
    expect(src.engine.history().filter((r) => r.eventLabel.includes('scoped.out') && r.outcome === 'failed').length).toBeGreaterThanOrEqual(1);
    expect(src.state('out')!.local.version).toBe(version);
    expect(src.state('out')!.relations['rel-2']!.overlay).toBeUndefined();
    expect(sendRecordOf(src, 'rel-2', 'other/0')!.nextSeq).toBe(seq);
    expect(seen(other, 'rel-2').bag).toEqual({ value: 1, owner: 'src/0' });
    src.engine.skip();
    await expect(run).rejects.toMatchObject({ code: 'ENGINE_ERR_SKIPPED' });
  });

  it('relations converge to their effective bags after the sender loses its link store', async () => {
    const { c, src, dst, other } = await twoRelations();
    await src.publish('out', 1);
    await src.scoped('out', { relationId: 'rel-2', publish: { value: 2 } });
    await c.tick(200);
    src.restartWithoutLinkStore();
    await src.scoped('out', { relationId: 'rel-2', publish: { value: 4 } });
    expect(await c.until(() => viewMismatches(c).length === 0, 5_000)).toBe(true);
    expect(seen(other, 'rel-2').bag).toEqual({ value: 4, owner: 'src/0' });
    expect(seen(dst, 'rel-1').bag).toEqual({ value: 1, owner: 'src/0' });
  });

  it('relationStatus reports each relation\'s own bag version', async () => {
    const { c, src } = await twoRelations();
    await src.publish('out', 1);
    await src.scoped('out', { relationId: 'rel-2', publish: { value: 2 } });
    await c.tick(100);
    const { relationStatus } = await import('../src/status');
    const byId = Object.fromEntries(relationStatus(src.kb.relations).map((r) => [r.relationId, r.published]));
    expect(byId).toEqual({ 'rel-1': 1, 'rel-2': 2 });
  });
});

/** src/0's `out` endpoint related to dst (rel-1) and other (rel-2); `local` = the endpoint-wide bag, `overlays` = per-relation keys already published. */
const outFixture = (local?: JsonObject, overlays: { 'rel-1'?: JsonObject; 'rel-2'?: JsonObject } = {}): Record<string, EndpointFixture> => ({
  out: {
    side: counter.provider,
    ...(local ? { local } : {}),
    relations: {
      'rel-1': { remoteService: 'dst', units: { 'dst/0': {} }, ...(overlays['rel-1'] ? { local: overlays['rel-1'] } : {}) },
      'rel-2': { remoteService: 'other', units: { 'other/0': {} }, ...(overlays['rel-2'] ? { local: overlays['rel-2'] } : {}) },
    },
  },
});

const outHandle = (ctx: Transaction) => relation(ctx, 'out', counter.provider);
type OutHandle = ReturnType<typeof outHandle>;

/** A handler that runs `body` on the `out` endpoint when event `go` fires, recording a RelationError's code and message as facts. */
const onGo = (body: (out: OutHandle, ctx: Transaction) => void): HandlerSpec[] => [
  defineHandler({
    name: 'go',
    when: event('go'),
    run(ctx) {
      try {
        body(outHandle(ctx), ctx);
      } catch (e) {
        if (!(e instanceof RelationError)) throw e;
        ctx.set('error.code', e.code);
        ctx.set('error.message', e.message);
      }
    },
  }),
];
const go = { kind: 'internal', name: 'go' } as const;

describe('per-relation data through runRelationScenario', () => {
  it('different values for the same key on two relations; endpoint-wide keys on both', async () => {
    const out = await runRelationScenario({
      handlers: onGo((o) => {
        o.publish({ value: 1, owner: 'src/0' });
        o.publish({ value: 2 }, { relationId: 'rel-2' });
      }),
      unit: 'src/0',
      endpoints: outFixture(),
      event: go,
    });
    expect(out.committed).toBe(true);
    expect(out.published('out')).toEqual({ value: 1, owner: 'src/0' });
    expect(out.published('out', 'rel-1')).toEqual({ value: 1, owner: 'src/0' });
    expect(out.published('out', 'rel-2')).toEqual({ value: 2, owner: 'src/0' });
  });

  it('local({ relationId }) reads the effective bag as staged in the run', async () => {
    const out = await runRelationScenario({
      handlers: onGo((o, ctx) => {
        o.publish({ value: 3 }, { relationId: 'rel-1' });
        o.publish({ value: 1, owner: 'src/0' });
        ctx.set('seen.local', { rel1: o.local({ relationId: 'rel-1' }), rel2: o.local({ relationId: 'rel-2' }), wide: o.local() });
      }),
      unit: 'src/0',
      endpoints: outFixture(),
      event: go,
    });
    expect(out.committed).toBe(true);
    expect(out.facts['seen.local']).toEqual({ rel1: { value: 3, owner: 'src/0' }, rel2: { value: 1, owner: 'src/0' }, wide: { value: 1, owner: 'src/0' } });
  });

  it('a per-relation key overrides the endpoint-wide one on that relation only; unpublishing it falls back', async () => {
    const endpoints = outFixture({ value: 1, owner: 'src/0' }, { 'rel-2': { value: 2 } });
    const overridden = await runRelationScenario({ handlers: onGo((o) => o.publish({ value: 5 })), unit: 'src/0', endpoints, event: go });
    expect(overridden.published('out', 'rel-1')).toEqual({ value: 5, owner: 'src/0' });
    expect(overridden.published('out', 'rel-2')).toEqual({ value: 2, owner: 'src/0' });
    // rel-2's bag did not change, so its version did not move (nothing will be sent on it); rel-1's did.
    const s = overridden.state('out')!;
    expect(s.local.version).toBe(2);
    expect(s.relations['rel-1']!.localVersion).toBe(2);
    expect(s.relations['rel-2']!.localVersion).toBe(1);

    const fellBack = await runRelationScenario({ handlers: onGo((o) => o.unpublish('value', { relationId: 'rel-2' })), unit: 'src/0', kb: overridden.kb, endpoints, event: go });
    expect(fellBack.published('out', 'rel-2')).toEqual({ value: 5, owner: 'src/0' });
    expect(fellBack.state('out')!.relations['rel-2']!.localVersion).toBe(3);
    expect(fellBack.state('out')!.relations['rel-1']!.localVersion).toBe(2);
  });

  it('a failed run publishes nothing', async () => {
    const out = await runRelationScenario({
      handlers: onGo((o) => {
        o.publish({ value: 2 }, { relationId: 'rel-2' });
        throw new Error('boom after publishing');
      }),
      unit: 'src/0',
      endpoints: outFixture({ value: 1, owner: 'src/0' }),
      event: go,
    });
    expect(out.committed).toBe(false);
    expect(out.published('out', 'rel-2')).toEqual({ value: 1, owner: 'src/0' });
    expect(out.state('out')!.local.version).toBe(1);
  });

  it('an unknown relation id is a REL_ERR_UNKNOWN_RELATION naming the endpoint\'s relations', async () => {
    const out = await runRelationScenario({
      handlers: onGo((o) => o.publish({ value: 2 }, { relationId: 'rel-9' })),
      unit: 'src/0',
      endpoints: outFixture(),
      event: go,
    });
    expect(out.facts['error.code']).toBe('REL_ERR_UNKNOWN_RELATION');
    expect(out.facts['error.message']).toMatch(/"rel-9".*\[rel-1, rel-2\]/);
    for (const body of [(o: OutHandle) => o.unpublish('value', { relationId: 'rel-9' }), (o: OutHandle) => void o.local({ relationId: 'rel-9' })]) {
      const r = await runRelationScenario({ handlers: onGo(body), unit: 'src/0', endpoints: outFixture(), event: go });
      expect(r.facts['error.code']).toBe('REL_ERR_UNKNOWN_RELATION');
    }
  });

  it('per-relation data is validated: unknown keys and values the interface refuses are REL_ERR_BAD_DATA', async () => {
    for (const data of [{ nope: 1 }, { value: 'seven' }]) {
      const out = await runRelationScenario({ handlers: onGo((o) => o.publish(data as never, { relationId: 'rel-1' })), unit: 'src/0', endpoints: outFixture(), event: go });
      expect(out.facts['error.code']).toBe('REL_ERR_BAD_DATA');
      expect(out.published('out', 'rel-1')).toEqual({});
    }
  });
});
