/**
 * Deploying over SSH to machines that are network namespaces, each running
 * a real sshd (test/ssh-hosts.ts): the hadoop bundle with the namenode on
 * machine 0 and datanodes on machines 1-3.
 *   - a machine without Node.js: a clear error naming it, nothing deployed;
 *   - converges; every unit advertises its machine's address;
 *   - SIGKILL an agent on a machine: its supervisor restarts it (new pid)
 *     and the cluster re-converges;
 *   - stop and start a remote unit; status names its machine and supervisor;
 *   - remove-unit a datanode: gone from workers, status and the namenode's
 *     links, its directory gone from its machine;
 *   - add-unit datanode --to 2: appears;
 *   - the release is content-addressed: nothing already there is copied again;
 *   - machines are listed with their units; add-machine refuses one without
 *     Node.js; remove-machine refuses one that still runs a unit;
 *   - destroy: no process left in any machine (by pid), directories gone.
 * Skips (with the reason) without root or network namespaces.
 */
import { access, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addUnit, clientFor, deploy, destroy, killUnit, readDeployment, removeUnit, startUnit, stopUnit, unitOf, type AgentStatus } from '@rhizome/agent';
import { fetchClusterStatus } from '../packages/agent/src/cli/status/fetch';
import { addMachine, listMachines, removeMachine } from '../packages/agent/src/deploy/machines';
import { agentArtifact, charmArtifact, supervisorArtifact } from '../packages/agent/src/deploy/release';
import { installArtifacts } from '../packages/agent/src/deploy/remote';
import { converge, ROOT } from './e2e-support';
import { sshHostsUnavailable, useSshMachines, type SshHosts } from './ssh-hosts';
import { until } from '@rhizome/test-support';

const unavailable = await sshHostsUnavailable();
if (unavailable) process.stderr.write(`skipping the SSH deployment tests: ${unavailable}\n`);

const NAME = 'hadoop';
let root = '';
let home = '';
let hosts: SshHosts;

useSshMachines({ unavailable, name: NAME, tmpPrefix: 'rz-ssh-', count: 5, hosts: { withoutNode: [4] } }, (bed) => {
  ({ root, home, hosts } = bed);
});

function bundle(machines: number[], datanodesTo: number[]): string {
  const m = hosts.machines;
  return [
    `name: ${NAME}`,
    'machines:',
    ...machines.map((i, id) => `  "${id}": { ssh: ${m[i]!.ssh}, dir: ${m[i]!.dir} }`),
    'services:',
    `  namenode: { charm: ${join(ROOT, 'charms/hadoop-namenode')}, to: [0], options: { clustername: ssh } }`,
    `  datanode: { charm: ${join(ROOT, 'charms/hadoop-datanode')}, to: [${datanodesTo.join(', ')}] }`,
    'relations:',
    '  - [datanode:namenode, namenode:datanode]',
    '',
  ].join('\n');
}

const exists = (p: string) => access(p).then(() => true, () => false);

describe.skipIf(unavailable !== undefined)('deploying over SSH to machines', () => {
  it('refuses a machine without Node.js, naming it, and deploys nothing anywhere', async () => {
    const file = join(root, 'no-node.yaml');
    await writeFile(file, bundle([0, 4], [1]));
    const err = await deploy(file, { home, timeoutMs: 60_000, noFsync: true }).catch((e: unknown) => e as Error & { code?: string });
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('AGENT_ERR_NO_NODE');
    expect((err as Error).message).toContain(`machine 1 (${hosts.machines[4]!.ssh}) has no Node.js`);
    expect(await exists(hosts.machines[0]!.dir)).toBe(false);
    expect(await exists(hosts.machines[4]!.dir)).toBe(false);
    expect(await exists(join(home, NAME))).toBe(false);
  });

  it('places hadoop on four machines, survives a SIGKILLed agent, scales down and up for good, and leaves nothing behind', { timeout: 150_000 }, async () => {
    const [m0, m1, m2, m3] = hosts.machines;
    const file = join(root, 'bundle.yaml');
    await writeFile(file, bundle([0, 1, 2, 3], [1, 2, 3]));
    const started = Date.now();
    const result = await deploy(file, { home, timeoutMs: 90_000, noFsync: true, onPhase: (p) => process.env['RZ_DEBUG_TIMING'] && process.stderr.write(`+${Date.now() - started} ms ${p}\n`) });
    process.stderr.write(`ssh deploy of 4 units on 4 machines converged in ${Date.now() - started} ms (convergence ${result.convergedInMs} ms)\n`);

    let d = await readDeployment(home, NAME);
    const addressOf = (unit: string) => unitOf(d, unit).gossipAddress.split(':')[0];
    expect(addressOf('namenode/0')).toBe(m0!.address);
    expect(['datanode/0', 'datanode/1', 'datanode/2'].map(addressOf)).toEqual([m1!.address, m2!.address, m3!.address]);
    expect(unitOf(d, 'datanode/0').supervisor).toBe('rhizome-supervisor');
    const nnDir = join(m0!.dir, NAME, 'namenode-0', 'unit');
    const workers = async () => (await readFile(join(nnDir, 'workers'), 'utf8').catch(() => '')).split('\n').filter(Boolean).sort();
    // workers holds the datanodes' machine addresses.
    const sorted = (xs: (string | undefined)[]) => [...xs].sort() as string[];
    await until('three workers', async () => ((await workers()).length === 3 ? true : undefined), 30_000);
    expect(await workers()).toEqual(sorted([m1!.address, m2!.address, m3!.address]));
    const nnClient = async () => clientFor(unitOf(await readDeployment(home, NAME), 'namenode/0'), 5_000);
    const datanodeAddresses = async () => {
      const s = await (await nnClient()).get<AgentStatus>('/status');
      return s.relations.flatMap((r) => r.units.map((u) => u.unit)).sort();
    };
    expect(await datanodeAddresses()).toEqual(['datanode/0', 'datanode/1', 'datanode/2']);

    // SIGKILL the agent of datanode/2 on machine 3: its supervisor starts it again.
    const before = unitOf(d, 'datanode/2').pid;
    await killUnit(home, 'datanode/2', { deployment: NAME });
    await until('datanode/2 restarted by its supervisor', async () => {
      const u = unitOf(await readDeployment(home, NAME), 'datanode/2');
      return u.alive && u.pid !== before ? true : undefined;
    }, 30_000);
    await converge(home, NAME, 60_000);
    expect(await workers()).toHaveLength(3);

    // stop / start a remote unit: the supervisor and agent go, then come back; status says where and under what.
    const stopped = await stopUnit(home, 'datanode/0', { deployment: NAME });
    expect(stopped.state).toBe('stopped');
    await until('two workers while datanode/0 is stopped', async () => ((await workers()).length === 2 ? true : undefined), 30_000);
    await startUnit(home, 'datanode/0', { deployment: NAME, noFsync: true });
    await converge(home, NAME, 60_000);
    await until('three workers after start', async () => ((await workers()).length === 3 ? true : undefined), 30_000);
    const status = await fetchClusterStatus({ home, deployment: NAME });
    const dn0 = status.units.find((u) => u.unit === 'datanode/0')!;
    expect(dn0.up).toBe(true);
    expect(dn0.machine).toBe(`1 ${m1!.ssh} (rhizome-supervisor)`);

    // remove-unit datanode/1 (machine 2): gone from workers, status, the namenode's links; its dir gone.
    const gone = unitOf(await readDeployment(home, NAME), 'datanode/1');
    await removeUnit(home, 'datanode/1', { deployment: NAME });
    await converge(home, NAME, 60_000);
    await until('two workers', async () => ((await workers()).length === 2 ? true : undefined), 30_000);
    expect(await workers()).toEqual(sorted([m1!.address, m3!.address]));
    d = await readDeployment(home, NAME);
    expect(d.units['datanode/1']).toBeUndefined();
    expect(await exists(gone.dataDir)).toBe(false);
    await until('the namenode forgot datanode/1', async () => {
      const s = await (await nnClient()).get<AgentStatus>('/status');
      return s.relations.some((r) => r.departed.includes('datanode/1') || r.links.some((l) => l.remoteUnit === 'datanode/1') || r.units.some((u) => u.unit === 'datanode/1')) ? undefined : true;
    }, 30_000);

    // add-unit --to 2: a new datanode on machine 2, where datanode/1 was.
    const added = await addUnit(home, 'datanode', { deployment: NAME, to: '2', noFsync: true });
    expect(added.unit).toBe('datanode/3');
    expect(added.gossipAddress.split(':')[0]).toBe(m2!.address);
    await converge(home, NAME, 60_000);
    await until('three workers again', async () => ((await workers()).length === 3 ? true : undefined), 30_000);
    expect(await workers()).toEqual(sorted([m1!.address, m2!.address, m3!.address]));
    expect(await datanodeAddresses()).toEqual(['datanode/0', 'datanode/2', 'datanode/3']);

    // Content-addressed: the machines already hold this release, so nothing is copied again.
    const machine0 = { id: '0', ssh: m0!.ssh, dir: m0!.dir };
    expect(await installArtifacts(machine0, [await agentArtifact(), await supervisorArtifact(), await charmArtifact(join(ROOT, 'charms/hadoop-namenode'))])).toEqual([]);

    // Machines: listed with their units; one without Node.js is refused by name; one in use is kept.
    expect(listMachines(await readDeployment(home, NAME)).map((m) => [m.id, m.units.join(' ')])).toEqual([['0', 'namenode/0'], ['1', 'datanode/0'], ['2', 'datanode/3'], ['3', 'datanode/2']]);
    await expect(addMachine(home, `ssh:${hosts.machines[4]!.ssh}`, { deployment: NAME, dir: hosts.machines[4]!.dir })).rejects.toThrow(/has no Node.js/);
    await expect(removeMachine(home, '2', { deployment: NAME })).rejects.toThrow(/still runs datanode\/3/);

    // destroy: nothing left running on any machine (by pid), nothing left in their dirs.
    d = await readDeployment(home, NAME);
    const pids = Object.values(d.units).flatMap((u) => [u.pid, u.supervisorPid ?? 0]).filter((p) => p > 0);
    expect(pids.length).toBeGreaterThanOrEqual(8);
    await destroy(home, { deployment: NAME });
    for (const pid of pids) expect(() => process.kill(pid, 0), `pid ${pid} still runs`).toThrow();
    for (const m of [m0!, m1!, m2!, m3!]) {
      const left = (await hosts.pidsIn(m)).filter((p) => p !== m.sshd.pid);
      const cmdlines = await Promise.all(left.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
      // Only sshd's own processes may remain (its session children exit with their connections).
      expect(cmdlines.filter((c) => c !== '' && !c.startsWith('sshd')), `processes left in ${m.ns}`).toEqual([]);
      expect(await exists(m.dir), `${m.dir} is gone`).toBe(false);
    }
    expect(await readdir(home)).not.toContain(NAME);
  });
});
