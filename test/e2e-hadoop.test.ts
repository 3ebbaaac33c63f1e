/**
 * examples/hadoop/bundle.yaml end to end, with real agent processes on
 * 127.0.0.1: converge; SIGKILL a datanode and re-converge; add a datanode
 * and re-converge; restart the killed one; stop the namenode (datanodes
 * block) and start it again.
 * The namenode's `workers` file and every unit's core-site.xml are read
 * back and parsed at each step.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUnit, deploy, destroy, killUnit, startUnit, stopUnit } from '@rhizome/agent';
import { parseHadoopXml } from '../charms/kit/src/hadoop-xml';
import { converge, ROOT, unitDir, unitStatus } from './e2e-support';
import { until } from '@rhizome/test-support';

const NAME = 'hadoop';
let home = '';

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rhizome-e2e-hadoop-'));
});
afterAll(async () => {
  await destroy(home, { deployment: NAME }).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
}, 60_000);

const workersFile = () => join(unitDir(home, NAME, 'namenode/0'), 'workers');
const workers = async () => (await readFile(workersFile(), 'utf8').catch(() => '')).split('\n').filter(Boolean);
const workersAre = (want: string[]) => until(`workers = [${want.join(', ')}]`, async () => ((await workers()).join(',') === want.join(',') ? true : undefined), 60_000);
const defaultFS = async (unit: string) => parseHadoopXml(await readFile(join(unitDir(home, NAME, unit), 'core-site.xml'), 'utf8'))['fs.defaultFS'];

describe('the hadoop bundle on real agents', () => {
  it('converges, drops a killed datanode from workers, adds a new one, takes the killed one back, and blocks datanodes without a namenode', { timeout: 300_000 }, async () => {
    const result = await deploy(join(ROOT, 'examples/hadoop/bundle.yaml'), { home, timeoutMs: 120_000, noFsync: true });
    expect(result.convergedInMs).toBeGreaterThanOrEqual(0);
    await workersAre(['datanode-0', 'datanode-1', 'datanode-2']);
    for (const u of ['namenode/0', 'datanode/0', 'datanode/1', 'datanode/2']) expect(await defaultFS(u)).toBe('hdfs://127.0.0.1:8020');
    expect((await unitStatus(home, NAME, 'namenode/0')).workload).toEqual({ state: 'active', message: 'namenode hdfs://127.0.0.1:8020 (demo): 3 datanodes' });

    await killUnit(home, 'datanode/1', { deployment: NAME });
    await converge(home, NAME);
    await workersAre(['datanode-0', 'datanode-2']);

    await addUnit(home, 'datanode', { deployment: NAME, noFsync: true });
    await converge(home, NAME);
    await workersAre(['datanode-0', 'datanode-2', 'datanode-3']);
    expect(await defaultFS('datanode/3')).toBe('hdfs://127.0.0.1:8020');
    expect(parseHadoopXml(await readFile(join(unitDir(home, NAME, 'namenode/0'), 'hdfs-site.xml'), 'utf8'))['dfs.replication']).toBe('3');

    // The killed datanode restarts from its data dir and is a worker again.
    await startUnit(home, 'datanode/1', { deployment: NAME, noFsync: true });
    await converge(home, NAME);
    await workersAre(['datanode-0', 'datanode-1', 'datanode-2', 'datanode-3']);

    // Without its namenode a datanode is blocked; it recovers when the namenode is back.
    await stopUnit(home, 'namenode/0', { deployment: NAME });
    for (const u of ['datanode/0', 'datanode/1', 'datanode/2', 'datanode/3']) {
      await until(`${u} blocked`, async () => ((await unitStatus(home, NAME, u)).workload?.message === 'waiting for namenode' ? true : undefined), 90_000);
    }
    await startUnit(home, 'namenode/0', { deployment: NAME, noFsync: true });
    await converge(home, NAME);
    for (const u of ['datanode/0', 'datanode/1', 'datanode/2', 'datanode/3']) {
      await until(`${u} active again`, async () => ((await unitStatus(home, NAME, u)).workload?.state === 'active' ? true : undefined), 60_000);
    }
    await workersAre(['datanode-0', 'datanode-1', 'datanode-2', 'datanode-3']);
  });
});
