import { mkdtemp, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseHadoopXml, testUnit, dfsSlave } from '@rhizome-charms/kit';

import { runRelationScenario, type EndpointFixture, type RelationScenarioOutput, type ScenarioRelationEvent } from '@rhizome/relations/testing';
import charm from '../charm';

const side = { side: dfsSlave.provider } satisfies EndpointFixture;
let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rhizome-nn-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function namenode(options: Record<string, string | number> = { clustername: 'demo' }) {
  return charm.handlers(testUnit({ unit: 'namenode/0', dir, address: '10.0.0.1', ...(charm.config ? { defaults: charm.config } : {}), options }));
}

/** Runs events one after the other from the output of the previous run, as the agent does. */
async function chain(handlers: ReturnType<typeof namenode>, events: ScenarioRelationEvent[], withRelation = true): Promise<RelationScenarioOutput> {
  let out = await runRelationScenario({
    handlers,
    unit: 'namenode/0',
    endpoints: withRelation ? { datanode: { ...side, relations: { 'rel-1': { remoteService: 'datanode' } } } } : {},
  });
  expect(out.committed).toBe(true);
  for (const event of events) {
    out = await runRelationScenario({ handlers, unit: 'namenode/0', kb: out.kb, endpoints: { datanode: side }, event });
    expect(out.error?.message).toBeUndefined();
  }
  return out;
}

const dn = (n: number): ScenarioRelationEvent => ({ endpoint: 'datanode', name: 'changed', unit: `datanode/${n}`, data: { address: '127.0.0.1', hostname: `datanode-${n}` } });
const workers = (): Promise<string> => readFile(join(dir, 'workers'), 'utf8');

describe('hadoop-namenode', () => {
  it('renders core-site.xml and an empty workers file at start, and says it has no datanodes', async () => {
    const out = await chain(namenode(), [], false);
    expect(parseHadoopXml(await readFile(join(dir, 'core-site.xml'), 'utf8'))).toEqual({ 'fs.defaultFS': 'hdfs://10.0.0.1:8020' });
    const hdfs = parseHadoopXml(await readFile(join(dir, 'hdfs-site.xml'), 'utf8'));
    expect(hdfs['dfs.namenode.name.dir']).toBe(`file://${join(dir, 'name')}`);
    expect(hdfs['dfs.namenode.http-address']).toBe('10.0.0.1:50070');
    expect(await workers()).toBe('');
    expect(out.facts['workload.status']).toEqual({ state: 'active', message: 'namenode hdfs://10.0.0.1:8020 (demo): no datanodes yet' });
    expect((await stat(join(dir, 'name'))).isDirectory()).toBe(true);
  });

  it('publishes the filesystem to a datanode that joins', async () => {
    const out = await chain(namenode(), [{ endpoint: 'datanode', name: 'joined', unit: 'datanode/0' }]);
    expect(out.published('datanode')).toEqual({ namenodes: ['10.0.0.1'], port: 8020, 'webhdfs-port': 50070, clustername: 'demo' });
    // Joined but nothing published yet: not a worker.
    expect(await workers()).toBe('');
  });

  it('is reached at its hostname option when set (fs.defaultFS, published data), else its advertised address', async () => {
    const out = await chain(namenode({ clustername: 'demo', hostname: 'nn.example' }), [{ endpoint: 'datanode', name: 'joined', unit: 'datanode/0' }]);
    expect(out.published('datanode')).toMatchObject({ namenodes: ['nn.example'] });
    expect(parseHadoopXml(await readFile(join(dir, 'core-site.xml'), 'utf8'))['fs.defaultFS']).toBe('hdfs://nn.example:8020');
    expect(() => namenode({ clustername: 'demo', hostname: 'bad host' })).toThrow(/hostname/);
  });

  it('brackets an IPv6 address in fs.defaultFS and the RPC address', async () => {
    await chain(charm.handlers(testUnit({ unit: 'namenode/0', dir, address: 'fd00::1', ...(charm.config ? { defaults: charm.config } : {}), options: { clustername: 'demo' } })), []);
    expect(parseHadoopXml(await readFile(join(dir, 'core-site.xml'), 'utf8'))['fs.defaultFS']).toBe('hdfs://[fd00::1]:8020');
  });

  it('keeps workers equal to the live datanodes, sorted: arrivals appear, departures disappear', async () => {
    const handlers = namenode();
    let out = await chain(handlers, [dn(2), dn(0), dn(10), dn(1)]);
    expect(await workers()).toBe('datanode-0\ndatanode-1\ndatanode-2\ndatanode-10\n');
    expect(out.facts['workload.status']).toMatchObject({ state: 'active', message: expect.stringContaining('4 datanodes') });
    expect(parseHadoopXml(await readFile(join(dir, 'hdfs-site.xml'), 'utf8'))['dfs.replication']).toBe('3');

    out = await runRelationScenario({ handlers, unit: 'namenode/0', kb: out.kb, endpoints: { datanode: side }, event: { endpoint: 'datanode', name: 'departed', unit: 'datanode/1' } });
    expect(out.committed).toBe(true);
    expect(await workers()).toBe('datanode-0\ndatanode-2\ndatanode-10\n');

    out = await runRelationScenario({ handlers, unit: 'namenode/0', kb: out.kb, endpoints: { datanode: side }, event: dn(3) });
    expect(await workers()).toBe('datanode-0\ndatanode-2\ndatanode-3\ndatanode-10\n');

    out = await runRelationScenario({ handlers, unit: 'namenode/0', kb: out.kb, endpoints: { datanode: side }, event: { endpoint: 'datanode', name: 'broken' } });
    expect(out.committed).toBe(true);
    expect(await workers()).toBe('');
    expect(out.facts['workload.status']).toMatchObject({ message: expect.stringContaining('no datanodes yet') });
  });

  it('lowers dfs.replication to the number of live datanodes', async () => {
    await chain(namenode(), [dn(0)]);
    expect(parseHadoopXml(await readFile(join(dir, 'hdfs-site.xml'), 'utf8'))['dfs.replication']).toBe('1');
  });

  it('does not list a datanode whose data violates the interface, and reports it as a relation error', async () => {
    const handlers = namenode();
    const out = await chain(handlers, [dn(0), { endpoint: 'datanode', name: 'changed', unit: 'datanode/1', data: { address: 42 } }]);
    expect(await workers()).toBe('datanode-0\n');
    expect(out.state('datanode')!.relations['rel-1']!.units['datanode/1']).toMatchObject({ status: 'invalid', invalidKeys: ['address'] });
  });

  it('does not rewrite workers when a change leaves the list as it was', async () => {
    const handlers = namenode();
    const out = await chain(handlers, [dn(0)]);
    const old = new Date('2020-01-01T00:00:00Z');
    await utimes(join(dir, 'workers'), old, old);
    const again = await runRelationScenario({
      handlers,
      unit: 'namenode/0',
      kb: out.kb,
      endpoints: { datanode: side },
      event: { endpoint: 'datanode', name: 'changed', unit: 'datanode/0', data: { address: '127.0.0.2', hostname: 'datanode-0' } },
    });
    expect(again.committed).toBe(true);
    expect(again.report.steps.map((s) => s.handler)).not.toContain('write-workers');
    expect((await stat(join(dir, 'workers'))).mtime.getTime()).toBe(old.getTime());
  });

  it('refuses bad config with a message that names the option', () => {
    expect(() => namenode({ clustername: 'Bad Name' })).toThrow(/clustername/);
    expect(() => namenode({ port: 70000 })).toThrow(/"port" must be a port number/);
  });
});
