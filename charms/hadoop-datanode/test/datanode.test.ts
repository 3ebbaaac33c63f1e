import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseHadoopXml, testUnit, dfsSlave } from '@rhizome-charms/kit';

import { runRelationScenario, type EndpointFixture, type RelationScenarioOutput, type ScenarioRelationEvent } from '@rhizome/relations/testing';
import charm from '../charm';
import { datanodeHostname, WAITING_FOR_NAMENODE } from '../src/handlers';

const side = { side: dfsSlave.requirer } satisfies EndpointFixture;
const NN = { namenodes: ['10.0.0.1'], port: 8020, 'webhdfs-port': 50070, clustername: 'demo' };
let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rhizome-dn-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const handlers = () => charm.handlers(testUnit({ unit: 'datanode/3', dir, address: '10.0.0.13' }));

async function chain(events: ScenarioRelationEvent[], withRelation = true): Promise<RelationScenarioOutput> {
  const h = handlers();
  let out = await runRelationScenario({
    handlers: h,
    unit: 'datanode/3',
    endpoints: withRelation ? { namenode: { ...side, relations: { 'rel-1': { remoteService: 'namenode' } } } } : {},
  });
  expect(out.committed).toBe(true);
  for (const event of events) {
    out = await runRelationScenario({ handlers: h, unit: 'datanode/3', kb: out.kb, endpoints: { namenode: side }, event });
    expect(out.error?.message).toBeUndefined();
  }
  return out;
}

const exists = (f: string) => stat(join(dir, f)).then(() => true, () => false);

describe('hadoop-datanode', () => {
  it('goes by a name other machines resolve: the hostname option, else its advertised address (its label only on loopback)', () => {
    expect(datanodeHostname({ unit: 'datanode/3', address: '10.0.0.13', config: {} })).toBe('10.0.0.13');
    expect(datanodeHostname({ unit: 'datanode/3', address: '10.0.0.13', config: { hostname: 'dn3.example' } })).toBe('dn3.example');
    expect(datanodeHostname({ unit: 'datanode/3', address: '127.0.0.1', config: { hostname: '' } })).toBe('datanode-3');
  });

  it('is blocked waiting for a namenode when it has none, and renders nothing', async () => {
    const out = await chain([], false);
    expect(out.facts['workload.status']).toEqual({ state: 'blocked', message: WAITING_FOR_NAMENODE });
    expect(await exists('core-site.xml')).toBe(false);
    expect((await stat(join(dir, 'data'))).isDirectory()).toBe(true);
  });

  it('publishes its address and hostname when a namenode joins, and stays blocked until it publishes', async () => {
    const out = await chain([{ endpoint: 'namenode', name: 'joined', unit: 'namenode/0' }]);
    expect(out.published('namenode')).toEqual({ address: '10.0.0.13', hostname: '10.0.0.13' });
    expect(out.facts['workload.status']).toEqual({ state: 'blocked', message: WAITING_FOR_NAMENODE });
  });

  it("renders core-site.xml and hdfs-site.xml from the namenode's data and becomes active", async () => {
    const out = await chain([{ endpoint: 'namenode', name: 'joined', unit: 'namenode/0' }, { endpoint: 'namenode', name: 'changed', unit: 'namenode/0', data: NN }]);
    expect(parseHadoopXml(await readFile(join(dir, 'core-site.xml'), 'utf8'))).toEqual({ 'fs.defaultFS': 'hdfs://10.0.0.1:8020' });
    const hdfs = parseHadoopXml(await readFile(join(dir, 'hdfs-site.xml'), 'utf8'));
    expect(hdfs).toMatchObject({ 'dfs.datanode.data.dir': `file://${join(dir, 'data')}`, 'dfs.datanode.hostname': '10.0.0.13', 'dfs.namenode.http-address': '10.0.0.1:50070' });
    expect(out.facts['hdfs.namenode']).toBe('hdfs://10.0.0.1:8020');
    expect(out.facts['workload.status']).toEqual({ state: 'active', message: 'datanode 10.0.0.13 of hdfs://10.0.0.1:8020 (demo)' });
  });

  it('follows the namenode when it moves, and blocks again when it departs', async () => {
    let out = await chain([
      { endpoint: 'namenode', name: 'changed', unit: 'namenode/0', data: NN },
      { endpoint: 'namenode', name: 'changed', unit: 'namenode/0', data: { ...NN, namenodes: ['10.0.0.2'], port: 9000 } },
    ]);
    expect(parseHadoopXml(await readFile(join(dir, 'core-site.xml'), 'utf8'))['fs.defaultFS']).toBe('hdfs://10.0.0.2:9000');
    out = await runRelationScenario({ handlers: handlers(), unit: 'datanode/3', kb: out.kb, endpoints: { namenode: side }, event: { endpoint: 'namenode', name: 'departed', unit: 'namenode/0' } });
    expect(out.committed).toBe(true);
    expect(out.facts['workload.status']).toEqual({ state: 'blocked', message: WAITING_FOR_NAMENODE });
    expect(out.facts['hdfs.namenode']).toBeUndefined();
  });

  it('stays blocked on namenode data that violates the interface, which shows as a relation error', async () => {
    const out = await chain([{ endpoint: 'namenode', name: 'changed', unit: 'namenode/0', data: { ...NN, port: 'eighty' } }]);
    expect(out.facts['workload.status']).toEqual({ state: 'blocked', message: WAITING_FOR_NAMENODE });
    expect(await exists('core-site.xml')).toBe(false);
    const rel = out.state('namenode')!.relations['rel-1']!;
    expect(rel.units['namenode/0']).toMatchObject({ status: 'invalid', invalidKeys: ['port'] });
  });
});
