import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineHandler, event, fact, internalEvent, not, relationEvent, relationFact, type HandlerSpec } from '@rhizome/engine';
import { defineInterface } from '../src/interface';
import { dfsSlave } from './interfaces/dfs-slave';
import { http } from './interfaces/http';
import { relation } from '../src/relation';
import { runRelationScenario, type EndpointFixture } from '../src/testing';
import { NAMENODE_DATA } from './fixtures';

const nnEndpoint = (units: Record<string, Record<string, never> | Record<string, unknown>> = { 'hdfs-namenode/0': {} }): Record<string, EndpointFixture> => ({
  namenode: { side: dfsSlave.requirer, relations: { 'rel-1': { remoteService: 'hdfs-namenode', units: units as never } } },
});

const datanodeHandlers: HandlerSpec[] = [
  defineHandler({
    name: 'note-changed',
    when: relationEvent('namenode', 'changed'),
    run(ctx) {
      const keys = ctx.event?.kind === 'relation' ? ctx.event.keys ?? [] : [];
      ctx.set('seen.changed-keys', [...keys]);
      ctx.set('seen.errors', relation(ctx, 'namenode', dfsSlave.requirer).errors().map((e) => ({ unit: e.unit, keys: [...e.keys] })));
    },
  }),
  defineHandler({
    name: 'configure',
    when: [fact('hdfs.installed'), relationFact('namenode', 'available')],
    run(ctx) {
      const nn = relation(ctx, 'namenode', dfsSlave.requirer);
      const first = nn.all()[0]!;
      // Typed access: namenodes is string[], port a number (checked by tsc, which compiles the tests).
      expectTypeOf(first.data.namenodes).toEqualTypeOf<string[]>();
      expectTypeOf(first.data.port).toEqualTypeOf<number>();
      expectTypeOf(nn.publish).parameter(0).toEqualTypeOf<{ address?: string; hostname?: string | undefined }>();
      ctx.set('hdfs.namenode', `${first.data.namenodes[0]}:${first.data.port}`);
      nn.publish({ address: '10.0.0.7', hostname: 'dn0' });
    },
  }),
];

describe('relation() in handlers, through runRelationScenario', () => {
  it('a valid remote bag fires changed with the keys, makes the relation available, and the handler publishes', async () => {
    const out = await runRelationScenario({
      handlers: datanodeHandlers,
      unit: 'hdfs-datanode/0',
      facts: { 'hdfs.installed': true },
      endpoints: nnEndpoint(),
      event: { endpoint: 'namenode', name: 'changed', unit: 'hdfs-namenode/0', data: NAMENODE_DATA },
    });
    expect(out.committed).toBe(true);
    expect(out.report.steps.map((s) => s.handler)).toEqual(['note-changed', 'configure']);
    expect(out.facts['seen.changed-keys']).toEqual(['clustername', 'namenodes', 'port', 'webhdfs-port']);
    expect(out.facts['hdfs.namenode']).toBe('nn0.example:8020');
    expect(out.published('namenode')).toEqual({ address: '10.0.0.7', hostname: 'dn0' });
    expect(out.state('namenode')?.local.version).toBe(1);
    expect(out.state('namenode')?.relations['rel-1']?.units['hdfs-namenode/0']?.status).toBe('ok');
  });

  it('invalid remote data is a relation error with the offending keys and never reaches a handler as valid', async () => {
    const out = await runRelationScenario({
      handlers: datanodeHandlers,
      unit: 'hdfs-datanode/0',
      facts: { 'hdfs.installed': true },
      endpoints: nnEndpoint(),
      event: { endpoint: 'namenode', name: 'changed', unit: 'hdfs-namenode/0', data: { ...NAMENODE_DATA, port: 'eighty', 'webhdfs-port': 70000 } },
    });
    expect(out.committed).toBe(true);
    expect(out.report.steps.map((s) => s.handler)).toEqual(['note-changed']);
    expect(out.facts['seen.errors']).toEqual([{ unit: 'hdfs-namenode/0', keys: ['port', 'webhdfs-port'] }]);
    const view = out.state('namenode')!.relations['rel-1']!.units['hdfs-namenode/0']!;
    expect(view.status).toBe('invalid');
    expect(view.problems.join(' ')).toMatch(/port/);
    expect(out.facts['hdfs.namenode']).toBeUndefined();
  });

  it('incomplete remote data is neither available nor an error', async () => {
    const out = await runRelationScenario({
      handlers: datanodeHandlers,
      unit: 'hdfs-datanode/0',
      facts: { 'hdfs.installed': true },
      endpoints: nnEndpoint(),
      event: { endpoint: 'namenode', name: 'changed', unit: 'hdfs-namenode/0', data: { port: 8020 } },
    });
    const view = out.state('namenode')!.relations['rel-1']!.units['hdfs-namenode/0']!;
    expect(view.status).toBe('incomplete');
    expect(view.missingKeys).toEqual(['clustername', 'namenodes', 'webhdfs-port']);
    expect(out.facts['seen.errors']).toEqual([]);
    expect(out.report.steps.map((s) => s.handler)).toEqual(['note-changed']);
  });

  it('publishing data that violates this side of the interface fails the run with REL_ERR_BAD_DATA', async () => {
    const bad = defineHandler({
      name: 'bad-publish',
      when: relationEvent('namenode', 'joined'),
      run(ctx) {
        relation(ctx, 'namenode', dfsSlave.requirer).publish({ address: 42 as unknown as string });
      },
    });
    const unknownKey = defineHandler({
      name: 'unknown-key',
      when: relationEvent('namenode', 'joined'),
      run(ctx) {
        relation(ctx, 'namenode', dfsSlave.requirer).publish({ colour: 'red' } as never);
      },
    });
    for (const [h, pattern] of [[bad, /address/], [unknownKey, /unknown keys colour; the interface allows address, hostname/]] as const) {
      const out = await runRelationScenario({ handlers: [h], unit: 'hdfs-datanode/0', endpoints: nnEndpoint({}), event: { endpoint: 'namenode', name: 'joined', unit: 'hdfs-namenode/0' } });
      expect(out.committed).toBe(false);
      expect(out.error?.code).toBe('ENGINE_ERR_HANDLER_FAILED');
      expect(out.error?.cause).toMatchObject({ code: 'REL_ERR_BAD_DATA' });
      expect(out.error?.message).toMatch(pattern);
      expect(out.published('namenode')).toEqual({});
    }
  });

  it('accepts the whole interface too, taking the side from the endpoint role', async () => {
    const h = defineHandler({
      name: 'by-interface',
      when: relationEvent('namenode', 'changed'),
      run(ctx) {
        const nn = relation(ctx, 'namenode', dfsSlave);
        ctx.set('units', nn.units());
        ctx.set('clusters', nn.all().map((b) => ('clustername' in b.data ? b.data.clustername : '?')));
        nn.publish({ address: '10.0.0.9' });
      },
    });
    const out = await runRelationScenario({ handlers: [h], unit: 'hdfs-datanode/0', endpoints: nnEndpoint(), event: { endpoint: 'namenode', name: 'changed', unit: 'hdfs-namenode/0', data: NAMENODE_DATA } });
    expect(out.facts['units']).toEqual(['hdfs-namenode/0']);
    expect(out.facts['clusters']).toEqual(['c1']);
    expect(out.published('namenode')).toEqual({ address: '10.0.0.9' });
    // Before any relation exists, reading is fine but publishing needs the side.
    const early = defineHandler({ name: 'early', atStartup: true, run: (ctx) => relation(ctx, 'namenode', dfsSlave).publish({ address: 'x' }) });
    const none = await runRelationScenario({ handlers: [early], unit: 'hdfs-datanode/0' });
    expect(none.error?.cause).toMatchObject({ code: 'REL_ERR_WRONG_SIDE' });
    expect(none.error?.message).toMatch(/dfs-slave\.requirer/);
  });

  it('reading an endpoint with the wrong side is a typed error', async () => {
    const h = defineHandler({
      name: 'wrong-side',
      when: relationEvent('namenode', 'joined'),
      run(ctx) {
        relation(ctx, 'namenode', dfsSlave.provider).units();
      },
    });
    const out = await runRelationScenario({ handlers: [h], unit: 'hdfs-datanode/0', endpoints: nnEndpoint({}), event: { endpoint: 'namenode', name: 'joined', unit: 'hdfs-namenode/0' } });
    expect(out.error?.cause).toMatchObject({ code: 'REL_ERR_WRONG_SIDE' });
    expect(out.error?.message).toMatch(/dfs-slave\.requirer/);
  });

  it('relation events never stick: the next run does not see changed', async () => {
    const first = await runRelationScenario({
      handlers: datanodeHandlers,
      unit: 'hdfs-datanode/0',
      endpoints: nnEndpoint(),
      event: { endpoint: 'namenode', name: 'changed', unit: 'hdfs-namenode/0', data: NAMENODE_DATA },
    });
    expect(first.report.steps.map((s) => s.handler)).toEqual(['note-changed']);
    const second = await runRelationScenario({
      handlers: datanodeHandlers,
      unit: 'hdfs-datanode/0',
      kb: first.kb,
      endpoints: nnEndpoint(),
      facts: {},
      event: internalEvent('config.changed'),
    });
    expect(second.committed).toBe(true);
    expect(second.report.steps.map((s) => s.handler)).toEqual([]);
  });

  it('departed and broken update the relation facts', async () => {
    const handlers = [
      defineHandler({ name: 'on-departed', when: [relationEvent('namenode', 'departed'), not(relationFact('namenode', 'joined'))], run: (ctx) => ctx.set('nn.gone') }),
      defineHandler({ name: 'on-broken', when: relationEvent('namenode', 'broken'), run: (ctx) => ctx.set('nn.broken', relation(ctx, 'namenode', dfsSlave.requirer).relationIds()) }),
    ];
    const departed = await runRelationScenario({ handlers, unit: 'hdfs-datanode/0', endpoints: nnEndpoint({ 'hdfs-namenode/0': NAMENODE_DATA }), event: { endpoint: 'namenode', name: 'departed', unit: 'hdfs-namenode/0' } });
    expect(departed.facts['nn.gone']).toBe(true);
    expect(departed.state('namenode')!.relations['rel-1']!.departed).toEqual(['hdfs-namenode/0']);
    const broken = await runRelationScenario({ handlers, unit: 'hdfs-datanode/0', kb: departed.kb, endpoints: nnEndpoint(), event: { endpoint: 'namenode', name: 'broken' } });
    expect(broken.facts['nn.broken']).toEqual([]);
  });
});

describe('peers: leader and the application bag', () => {
  const peerIface = defineInterface({
    name: 'hdfs-peers',
    version: '1.0.0',
    provides: z.object({}),
    requires: z.object({}),
    peers: z.object({ address: z.string() }),
    app: z.object({ 'cluster-id': z.string() }),
  });
  const peers = (units: string[]): Record<string, EndpointFixture> => ({
    cluster: { side: peerIface.peer, relations: { 'peer-1': { remoteService: 'hdfs-namenode', units: Object.fromEntries(units.map((u) => [u, { address: u }])) } } },
  });
  const handlers = [
    defineHandler({
      name: 'elect',
      when: event('elect'),
      run(ctx) {
        const c = relation(ctx, 'cluster', peerIface.peer);
        ctx.set('leader', c.leader());
        ctx.set('is-leader', c.isLeader());
        if (c.isLeader()) c.publishApp({ 'cluster-id': `by-${ctx.get<string>('me') ?? '?'}` });
      },
    }),
    defineHandler({ name: 'force-app', when: event('force'), run: (ctx) => relation(ctx, 'cluster', peerIface.peer).publishApp({ 'cluster-id': 'x' }) }),
  ];

  it('the lowest live unit (numerically) leads and alone writes the app bag', async () => {
    const out = await runRelationScenario({ handlers, unit: 'hdfs-namenode/2', facts: { me: 'nn2' }, endpoints: peers(['hdfs-namenode/10', 'hdfs-namenode/3']), event: internalEvent('elect') });
    expect(out.facts['leader']).toBe('hdfs-namenode/2');
    expect(out.facts['is-leader']).toBe(true);
    expect(out.appBag('cluster')).toEqual({ 'cluster-id': 'by-nn2' });
    expect(out.state('cluster')!.app).toMatchObject({ version: 1, writer: 'hdfs-namenode/2' });

    const follower = await runRelationScenario({ handlers, unit: 'hdfs-namenode/3', endpoints: peers(['hdfs-namenode/10', 'hdfs-namenode/2']), event: internalEvent('elect') });
    expect(follower.facts['leader']).toBe('hdfs-namenode/2');
    expect(follower.facts['is-leader']).toBe(false);
    expect(follower.appBag('cluster')).toBeUndefined();

    const forced = await runRelationScenario({ handlers, unit: 'hdfs-namenode/3', endpoints: peers(['hdfs-namenode/2']), event: internalEvent('force') });
    expect(forced.committed).toBe(false);
    expect(forced.error?.cause).toMatchObject({ code: 'REL_ERR_NOT_LEADER' });
    expect(forced.error?.message).toMatch(/the leader is hdfs-namenode\/2/);
  });

  it('re-elects when the leader departs', async () => {
    const before = await runRelationScenario({ handlers, unit: 'hdfs-namenode/3', endpoints: peers(['hdfs-namenode/2', 'hdfs-namenode/5']), event: internalEvent('elect') });
    expect(before.facts['leader']).toBe('hdfs-namenode/2');
    const departed = await runRelationScenario({ handlers, unit: 'hdfs-namenode/3', kb: before.kb, endpoints: peers([]), event: { endpoint: 'cluster', name: 'departed', unit: 'hdfs-namenode/2' } });
    const after = await runRelationScenario({ handlers, unit: 'hdfs-namenode/3', kb: departed.kb, facts: {}, endpoints: peers([]), event: internalEvent('elect') });
    expect(after.facts['leader']).toBe('hdfs-namenode/3');
    expect(after.facts['is-leader']).toBe(true);
    expect(after.appBag('cluster')).toEqual({ 'cluster-id': 'by-?' });
  });
});

describe('an endpoint with several relations (a load balancer over two web services)', () => {
  const handlers = [
    defineHandler({
      name: 'render-backends',
      when: relationEvent('backends', 'changed'),
      run(ctx) {
        const backends = relation(ctx, 'backends', http.requirer);
        ctx.set('lb.backends', backends.all().map((b) => `${b.relationId}:${b.data.host}:${b.data.port}`));
        ctx.set('lb.units', backends.units());
      },
    }),
  ];
  const endpoints: Record<string, EndpointFixture> = {
    backends: {
      side: http.requirer,
      relations: {
        'rel-a': { remoteService: 'web-a', units: { 'web-a/0': { host: '10.0.0.1', port: 80 } } },
        'rel-b': { remoteService: 'web-b', units: { 'web-b/1': {}, 'web-b/0': {} } },
      },
    },
  };

  it('reads every relation of the endpoint; the event names the relation it happened on', async () => {
    const out = await runRelationScenario({
      handlers,
      unit: 'lb/0',
      endpoints,
      event: { endpoint: 'backends', name: 'changed', relationId: 'rel-b', unit: 'web-b/1', data: { host: '10.0.1.2', port: 8080 } },
    });
    expect(out.report.event).toMatchObject({ unit: 'web-b/1', keys: ['host', 'port'], payload: { relationId: 'rel-b' } });
    expect(out.facts['lb.backends']).toEqual(['rel-a:10.0.0.1:80', 'rel-b:10.0.1.2:8080']);
    expect(out.facts['lb.units']).toEqual(['web-a/0', 'web-b/0', 'web-b/1']);
  });

  it('asks for the relation id when the endpoint has several', async () => {
    await expect(
      runRelationScenario({ handlers, unit: 'lb/0', endpoints, event: { endpoint: 'backends', name: 'changed', unit: 'web-b/1', data: {} } }),
    ).rejects.toMatchObject({ code: 'REL_ERR_UNKNOWN_RELATION' });
  });
});
