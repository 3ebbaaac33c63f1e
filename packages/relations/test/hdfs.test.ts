/**
 * The shipped interfaces end to end, the way charms use them: a namenode and
 * two datanodes related over `dfs-slave`, handlers written with relation()
 * and relation facts, over the simulated network with some loss.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { all, defineHandler, fact, not, relationEvent, relationFact, type HandlerSpec } from '@rhizome/engine';
import { dfsSlave } from './interfaces/dfs-slave';
import { parseCharmMetadata } from '../src/metadata';
import { relation } from '../src/relation';
import { SimCluster } from './harness';

const namenodeMeta = parseCharmMetadata({ name: 'hdfs-namenode', provides: { datanode: { interface: 'dfs-slave' } } });
const datanodeMeta = parseCharmMetadata({ name: 'hdfs-datanode', requires: { namenode: { interface: 'dfs-slave' } } });

const namenodeHandlers: HandlerSpec[] = [
  defineHandler({
    name: 'offer-filesystem',
    when: relationEvent('datanode', 'joined'),
    run(ctx) {
      relation(ctx, 'datanode', dfsSlave.provider).publish({ namenodes: ['nn0.example'], port: 8020, 'webhdfs-port': 50070, clustername: 'prod' });
    },
  }),
  defineHandler({
    name: 'track-datanodes',
    when: relationEvent('datanode', 'changed'),
    run(ctx) {
      const addresses = relation(ctx, 'datanode', dfsSlave.provider)
        .all()
        .map((d) => d.data.address)
        .sort();
      ctx.set('hdfs.datanodes', addresses);
    },
  }),
];

const datanodeHandlers = (address: string): HandlerSpec[] => [
  defineHandler({
    name: 'configure',
    when: all(relationFact('namenode', 'available'), not(fact('hdfs.configured'))),
    run(ctx) {
      const [nn] = relation(ctx, 'namenode', dfsSlave.requirer).all();
      ctx.set('hdfs.default-fs', `hdfs://${nn!.data.namenodes[0]}:${nn!.data.port}`);
      ctx.set('hdfs.configured');
      relation(ctx, 'namenode', dfsSlave.requirer).publish({ address, hostname: address.split('.')[0] });
    },
  }),
];

let cluster: SimCluster | undefined;
afterEach(() => {
  for (const u of cluster?.units.values() ?? []) u.crash();
});

describe('dfs-slave between a namenode and datanodes', () => {
  it('datanodes configure from the namenode, and the namenode learns every datanode address', async () => {
    const c = (cluster = new SimCluster(21));
    const nn = c.add('hdfs-namenode/0', namenodeMeta, namenodeHandlers);
    const dns = [c.add('hdfs-datanode/0', datanodeMeta, datanodeHandlers('dn0.example')), c.add('hdfs-datanode/1', datanodeMeta, datanodeHandlers('dn1.example'))];
    c.net.setFaults({ loss: 0.2, duplicate: 0.1, maxDelayMs: 30 });
    await c.relate('hdfs', [nn], 'datanode', dns, 'namenode');
    const done = await c.until(() => JSON.stringify(nn.fact('hdfs.datanodes')) === JSON.stringify(['dn0.example', 'dn1.example']), 20_000);
    expect(done).toBe(true);
    for (const dn of dns) {
      expect(dn.fact('hdfs.default-fs')).toBe('hdfs://nn0.example:8020');
      // The configure handler ran once: it is fact-only, guarded, and relation events do not stick.
      expect(dn.engine.history().filter((r) => r.steps.some((s) => s.handler === 'configure'))).toHaveLength(1);
    }
    expect(c.errors).toEqual([]);
  });
});
