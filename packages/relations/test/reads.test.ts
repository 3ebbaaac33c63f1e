/**
 * Issue 13 item 6, through the relations API: a fact-only handler that
 * renders relation views (`relation(ctx, ...).all()`) re-runs when a remote
 * unit's data changes, though its precondition names no relation at all.
 */
import { describe, expect, it } from 'vitest';
import { fact, type HandlerSpec } from '@rhizome/engine';
import { relation } from '../src/index';
import { dfsSlave } from './interfaces/dfs-slave';
import { runRelationScenario, type EndpointFixture } from '../src/testing';
import { NAMENODE_DATA } from './fixtures';

const endpoints: Record<string, EndpointFixture> = {
  namenode: { side: dfsSlave.requirer, relations: { 'rel-1': { remoteService: 'hdfs-namenode', units: { 'hdfs-namenode/0': {} } } } },
};

const handlers: HandlerSpec[] = [
  {
    name: 'render-core-site',
    when: fact('hdfs.installed'), // no relation fact: the relation is read through the context
    run(ctx) {
      const ports = relation(ctx, 'namenode', dfsSlave.requirer).all().map((n) => n.data.port);
      ctx.set('core-site.ports', ports);
    },
  },
];

describe('relation views read through the context', () => {
  it('re-run the handler when a remote bag changes, and the report says the relation changed', async () => {
    const started = await runRelationScenario({ handlers, unit: 'hdfs-datanode/0', facts: { 'hdfs.installed': true }, endpoints });
    expect(started.facts['core-site.ports']).toEqual([]);
    const out = await runRelationScenario({
      handlers,
      unit: 'hdfs-datanode/0',
      kb: started.kb,
      endpoints,
      event: { endpoint: 'namenode', name: 'changed', unit: 'hdfs-namenode/0', data: NAMENODE_DATA },
    });
    expect(out.report.steps.map((s) => s.handler)).toEqual(['render-core-site']);
    expect(out.report.steps[0]!.because).toEqual(['hdfs.installed', 'relation namenode changed']);
    expect(out.facts['core-site.ports']).toEqual([NAMENODE_DATA.port]);
  });
});
