/**
 * The main job in its real shape: the Hadoop example on five machines,
 * deployed over SSH with the CLI as an operator types it.
 *
 * The machines are network namespaces on a bridge, each with its own
 * address and its own OpenSSH server (test/ssh-hosts.ts, the harness the
 * SSH tests use; the system's sshd is never touched). Everything the demo
 * does to the cluster goes through `rhizome` and `ssh`:
 *
 *   1. rhizome deploy: namenode on machine 0, datanodes on machines 1-3;
 *      each agent runs under a supervisor, gossip encrypted with the
 *      deployment's keyring, advertising its machine's address;
 *   2. rhizome status;
 *   3. kill -9 an agent on machine 2: its supervisor restarts it;
 *   4. machine 3 drops off the network (its link down): the mesh declares
 *      its datanode failed and the namenode drops it; the link comes back
 *      and so does the datanode;
 *   5. rhizome add-machine + add-unit --to: a datanode on machine 4;
 *   6. rhizome destroy: nothing left running on any machine.
 *
 * The namespaces, the bridge and every process in them are removed at the
 * end, also on failure or Ctrl-C.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { destroy, readDeployment, unitOf, waitForConvergence } from '@rhizome/agent';
import { rhizomeCommand } from '@rhizome/agent/cli';
import { startSshHosts, type SshHosts } from '../test/ssh-hosts';
import { bold, dim, describeCheck, Progress, secs } from './demo-output';

const NAME = 'hadoop';
const CONVERGE_TIMEOUT_MS = 120_000;

export async function machinesDemo(home: string, root: string): Promise<void> {
  const timings: [string, number][] = [];
  let hosts: SshHosts | undefined;
  let deployed = false;
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, RHIZOME_HOME: home, ...(hosts ? { RHIZOME_SSH_CONFIG: hosts.sshConfig } : {}) });

  /** `rhizome ARGS` as a user runs it, its output indented; fails the demo on a non-zero exit. */
  const rhizome = async (args: string[], show = true): Promise<string> => {
    console.log(`  ${dim('$')} rhizome ${args.join(' ')}`);
    const cli = rhizomeCommand(args);
    const child = spawn(cli.command, [...cli.args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (b: Buffer): void => {
      out += b.toString();
      if (show) process.stdout.write(b.toString().replace(/^(?=.)/gm, '    '));
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`rhizome ${args.join(' ')} exited ${code}:\n${out}`);
    return out;
  };

  try {
    console.log(bold('Rhizome demo: a small HDFS on five machines, deployed over SSH'));
    const progress = new Progress();
    progress.update('starting 5 machines (network namespaces on a bridge, each with its own sshd)…');
    hosts = await startSshHosts(join(root, 'machines'), 5);
    progress.done();
    const m = hosts.machines;
    for (const [i, x] of m.entries()) console.log(dim(`  machine ${i}: ${x.address} (namespace ${x.ns}), sshd on port 22`));
    console.log();

    const bundle = join(root, 'bundle.yaml');
    const here = new URL('..', import.meta.url).pathname;
    await writeFile(
      bundle,
      [
        `name: ${NAME}`,
        'machines:',
        ...[0, 1, 2, 3].map((i) => `  "${i}": { ssh: ${m[i]!.ssh}, dir: ${m[i]!.dir} }`),
        'services:',
        `  namenode: { charm: ${join(here, 'charms/hadoop-namenode')}, to: [0], options: { clustername: demo } }`,
        `  datanode: { charm: ${join(here, 'charms/hadoop-datanode')}, to: [1, 2, 3] }`,
        'relations:',
        '  - [datanode:namenode, namenode:datanode]',
        '',
      ].join('\n'),
    );
    const workersFile = join(m[0]!.dir, NAME, 'namenode-0', 'unit', 'workers');
    // The namespaces share this filesystem, so the namenode's file can be polled here (an operator would ssh in).
    const workers = async (): Promise<string[]> => (await readFile(workersFile, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    const printWorkers = async (): Promise<void> => {
      const r = spawnSync('ssh', ['-F', hosts!.sshConfig, m[0]!.ssh, 'cat', workersFile], { encoding: 'utf8', timeout: 15_000 });
      console.log(`  ${dim('$')} ssh ${m[0]!.ssh} cat …/namenode-0/unit/workers`);
      console.log((r.stdout.trim() || '(empty)').replace(/^/gm, '    '));
    };
    /** Until the deployment converged with workers = want; the time since `since`. */
    const reconverge = async (want: readonly string[], since: number): Promise<number> => {
      const p = new Progress();
      const sorted = [...want].sort().join(' ');
      const deadline = since + CONVERGE_TIMEOUT_MS;
      let shown = (await workers()).sort().join(' ');
      for (;;) {
        const now = (await workers()).sort().join(' ');
        if (now !== shown) {
          p.done();
          console.log(`  ${dim(`+${secs(Date.now() - since)}`)} workers: ${now || '(empty)'}`);
          shown = now;
        }
        if (now === sorted) {
          await waitForConvergence(await readDeployment(home, NAME), {
            timeoutMs: Math.max(1_000, deadline - Date.now()),
            reload: () => readDeployment(home, NAME),
            onProgress: (c) => p.update(describeCheck(c, Date.now() - since)),
          });
          p.done();
          if ((await workers()).sort().join(' ') === sorted) return Date.now() - since;
        }
        if (Date.now() > deadline) throw new Error(`workers did not become [${sorted}] within ${secs(CONVERGE_TIMEOUT_MS)}; they are [${shown}]`);
        p.update(`waiting for workers = ${sorted}… ${secs(Date.now() - since)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    // 1. Deploy over SSH.
    console.log(bold('1. Deploy: the namenode on machine 0, datanodes on machines 1-3'));
    console.log(dim((await readFile(bundle, 'utf8')).trimEnd().replace(/^/gm, '    ')));
    const t0 = Date.now();
    deployed = true;
    await rhizome(['deploy', bundle]);
    const first = await reconverge([m[1]!.address, m[2]!.address, m[3]!.address], t0);
    timings.push(['deploy over SSH: 4 machines, agents started, related, converged', first]);
    console.log(`  ${bold(`converged in ${secs(first)}`)}\n`);

    // 2. Status.
    console.log(bold('2. Status'));
    await rhizome(['status']);
    await printWorkers();
    console.log();

    // 3. An agent crashes: its supervisor brings it back.
    const victim = 'datanode/1';
    const before = unitOf(await readDeployment(home, NAME), victim).pid;
    console.log(bold(`3. kill -9 the agent of ${victim} on machine 2 (pid ${before}): its supervisor restarts it`));
    const t1 = Date.now();
    await rhizome(['kill', victim]);
    for (;;) {
      const u = unitOf(await readDeployment(home, NAME), victim);
      if (u.alive && u.pid !== before) {
        console.log(`  ${dim(`+${secs(Date.now() - t1)}`)} restarted by ${u.supervisor ?? 'its supervisor'} as pid ${u.pid}`);
        break;
      }
      if (Date.now() - t1 > CONVERGE_TIMEOUT_MS) throw new Error(`${victim} was not restarted within ${secs(CONVERGE_TIMEOUT_MS)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const restarted = await reconverge([m[1]!.address, m[2]!.address, m[3]!.address], t1);
    timings.push([`kill -9 ${victim}'s agent: restarted, converged`, restarted]);
    console.log(`  ${bold(`converged in ${secs(restarted)}`)}\n`);

    // 4. A machine drops off the network, then comes back.
    console.log(bold(`4. Machine 3 (${m[3]!.address}) drops off the network (its link goes down)`));
    const ip = (state: 'up' | 'down'): void => {
      console.log(`  ${dim('$')} ip -n ${m[3]!.ns} link set eth0 ${state}`);
      const r = spawnSync('ip', ['-n', m[3]!.ns, 'link', 'set', 'eth0', state], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip link set eth0 ${state} failed: ${r.stderr}`);
    };
    const t2 = Date.now();
    ip('down');
    const dropped = await waitWorkers(workers, [m[1]!.address, m[2]!.address], t2);
    timings.push(['machine 3 off the network: its datanode dropped from workers', dropped]);
    console.log(`  ${bold(`the namenode dropped it in ${secs(dropped)}`)} ${dim('(the mesh probed it, suspected it, declared it failed)')}`);
    const t3 = Date.now();
    ip('up');
    const back = await reconverge([m[1]!.address, m[2]!.address, m[3]!.address], t3);
    timings.push(['machine 3 back on the network: converged', back]);
    console.log(`  ${bold(`back and converged in ${secs(back)}`)}\n`);

    // 5. One more machine, one more datanode.
    console.log(bold(`5. A new machine (${m[4]!.address}) and a datanode on it`));
    const t4 = Date.now();
    const added = await rhizome(['add-machine', `ssh:${m[4]!.ssh}`, '--dir', m[4]!.dir]);
    const id = /machine (\S+) added/.exec(added)?.[1];
    if (id === undefined) throw new Error(`add-machine did not say which machine it added:\n${added}`);
    await rhizome(['add-unit', 'datanode', '--to', id]);
    const grown = await reconverge([m[1]!.address, m[2]!.address, m[3]!.address, m[4]!.address], t4);
    timings.push(['add-machine + add-unit --to: converged with 4 datanodes', grown]);
    console.log(`  ${bold(`converged in ${secs(grown)}`)}`);
    await rhizome(['status']);
    console.log();

    // 6. Destroy.
    console.log(bold('6. Destroy'));
    const t5 = Date.now();
    await rhizome(['destroy']);
    deployed = false;
    const left = await agentsLeft(hosts);
    console.log(`  every agent stopped in ${secs(Date.now() - t5)}; agent processes left on the machines: ${left}\n`);

    console.log(bold('Timings'));
    const width = Math.max(...timings.map(([what]) => what.length));
    for (const [what, ms] of timings) console.log(`  ${what.padEnd(width)}  ${secs(ms).padStart(7)}`);
  } finally {
    if (deployed) await destroy(home, { deployment: NAME }).catch((err: unknown) => console.error(`destroy failed: ${(err as Error).message}`));
    await hosts?.cleanup();
  }
}

/** Until workers (sorted) are `want`; the time since `since`. */
async function waitWorkers(workers: () => Promise<string[]>, want: readonly string[], since: number): Promise<number> {
  const sorted = [...want].sort().join(' ');
  const p = new Progress();
  for (;;) {
    if ((await workers()).sort().join(' ') === sorted) {
      p.done();
      return Date.now() - since;
    }
    if (Date.now() - since > CONVERGE_TIMEOUT_MS) throw new Error(`workers did not become [${sorted}] within ${secs(CONVERGE_TIMEOUT_MS)}`);
    p.update(`waiting for workers = ${sorted}… ${secs(Date.now() - since)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Processes other than sshd still running in the machines' namespaces. */
async function agentsLeft(hosts: SshHosts): Promise<number> {
  let n = 0;
  for (const m of hosts.machines) {
    for (const pid of await hosts.pidsIn(m)) {
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => 'sshd')).trim();
      if (comm !== 'sshd') n++;
    }
  }
  return n;
}
