/**
 * The second operator trial: the shipped charms in their multi-machine
 * shape, tried by hand on machines (network namespaces, each with its own
 * sshd: test/ssh-hosts.ts) from the CLI, and what broke, each case a
 * regression test on one shared set of three machines and one deployment
 * (ZooKeeper on all three, web on machine 0, lb on machine 2):
 *   - a charm's playbook reaches the machine: charms are bundled into one
 *     module for a machine, and the lb's Ansible playbook beside its code
 *     was left behind (its first run failed: "playbook ... does not exist");
 *   - `rhizome config lb port=N` moves nginx (it committed and changed
 *     nothing), and onto a port already taken the run fails with nginx's
 *     bind error and rolls back (a reload exited 0 and the run committed);
 *   - a ZooKeeper ensemble that loses two of its three machines says
 *     `no quorum` and comes back by itself when they return (the survivor's
 *     runs waited 60 s for a quorum, failed, and the isolated units ended
 *     in error while status said `leader`);
 *   - `destroy` with a machine down stops everything it can reach and keeps
 *     the record, saying to run it again (it stopped at the first machine
 *     that did not answer, leaving the reachable ones running).
 * Skips (with the reason) without root, network namespaces, ansible-playbook,
 * nginx or ZooKeeper.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroy } from '@rhizome/agent';
import { GiveUp, until } from '@rhizome/test-support';
import { rhizomeIn } from '../packages/agent/test/cli/harness';
import { closeSshConnections } from '../packages/agent/src/deploy/remote';
import { ROOT } from './e2e-support';
import { sshHostsUnavailable, startSshHosts, type SshHosts } from './ssh-hosts';

const run = promisify(execFile);
const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);
const onPath = (bin: string): Promise<boolean> => run('sh', ['-c', `command -v ${bin}`]).then(() => true, () => false);

const unavailable =
  (await sshHostsUnavailable()) ??
  ((await onPath('ansible-playbook')) && (await exists('/usr/sbin/nginx')) ? undefined : 'needs ansible-playbook and nginx (scripts/ensure-apt.sh ansible-core nginx)') ??
  ((await exists('/usr/share/java/zookeeper.jar')) ? undefined : 'needs ZooKeeper (scripts/ensure-apt.sh zookeeper default-jre-headless)');
if (unavailable) process.stderr.write(`skipping the second operator trial: ${unavailable}\n`);

const NAME = 'trial2';
const LB_PORT = 18580;
let root = '';
let home = '';
let hosts: SshHosts;
let blocker: ChildProcess | undefined;

beforeAll(async () => {
  if (unavailable) return;
  root = await mkdtemp(join(tmpdir(), 'rz-trial2-'));
  home = join(root, 'home');
  hosts = await startSshHosts(join(root, 'hosts'), 3, { prefix: 'tr', subnet: '10.237' });
  process.env['RHIZOME_SSH_CONFIG'] = hosts.sshConfig;
}, 60_000);

afterAll(async () => {
  if (unavailable) return;
  blocker?.kill('SIGKILL');
  for (const m of hosts?.machines ?? []) await run('ip', ['-n', m.ns, 'link', 'set', 'eth0', 'up']).catch(() => undefined);
  await destroy(home, { deployment: NAME }).catch(() => undefined);
  await closeSshConnections();
  await hosts?.cleanup();
  await rm(root, { recursive: true, force: true });
}, 90_000);

interface UnitRow {
  unit: string;
  agent: string;
  workload: string;
  message: string;
}

async function units(...selectors: string[]): Promise<UnitRow[]> {
  const s = await rhizomeIn(home, 'status', ...selectors, '--format', 'json');
  return (JSON.parse(s.stdout) as { units: UnitRow[] }).units;
}

/** An HTTP GET from inside machine `i`'s namespace: the body, or '' when nothing answers. */
async function getFrom(i: number, url: string): Promise<string> {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(3000) }).then(async (r) => process.stdout.write(await r.text()), () => {})`;
  return (await run('ip', ['netns', 'exec', hosts.machines[i]!.ns, process.execPath, '-e', script])).stdout.trim();
}

describe.skipIf(unavailable !== undefined)('an operator on three machines, with the shipped charms', () => {
  it('deploys ZooKeeper, web and the Ansible-driven lb over SSH: the lb finds its playbook on its machine', { timeout: 180_000 }, async () => {
    const m = hosts.machines;
    const file = join(root, 'bundle.yaml');
    await writeFile(
      file,
      [
        `name: ${NAME}`,
        'machines:',
        ...m.map((x, i) => `  "${i}": { ssh: ${x.ssh}, dir: ${x.dir} }`),
        'services:',
        `  zookeeper: { charm: ${join(ROOT, 'charms/zookeeper')}, to: [0, 1, 2] }`,
        `  web: { charm: ${join(ROOT, 'charms/web')}, to: [0, 0] }`,
        `  lb: { charm: ${join(ROOT, 'charms/lb')}, to: [2], options: { port: ${LB_PORT} } }`,
        'relations:',
        '  - [lb:backends, web:website]',
        '',
      ].join('\n'),
    );
    const r = await rhizomeIn(home, 'deploy', file, '--timeout', '150');
    expect(r.code, r.stderr).toBe(0);
    // From machine 1, through nginx on machine 2, to both web units on machine 0.
    const lb = `http://${m[2]!.address}:${LB_PORT}/`;
    const seen = new Set<string>();
    await until('nginx reaching both web units', async () => {
      seen.add(await getFrom(1, lb));
      return seen.has('web/0') && seen.has('web/1') ? true : undefined;
    }, 30_000);
  });

  it('moves nginx with the port option; onto a port already taken the run fails with the reason and nginx stays', { timeout: 150_000 }, async () => {
    const m2 = hosts.machines[2]!;
    const moved = await rhizomeIn(home, 'config', 'lb', `port=${LB_PORT + 1}`);
    expect(moved.code, moved.stderr).toBe(0);
    expect((await units('lb/0'))[0]!.message).toContain(`nginx on http://${m2.address}:${LB_PORT + 1}/`);
    expect(await getFrom(1, `http://${m2.address}:${LB_PORT + 1}/`)).toMatch(/^web\/[01]$/);

    // Another program holds the next port on that machine.
    const taken = LB_PORT + 2;
    blocker = spawn('ip', ['netns', 'exec', m2.ns, process.execPath, '-e', `require('net').createServer().listen(${taken}, '0.0.0.0', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => blocker!.stdout!.once('data', () => resolve()));
    const refused = await rhizomeIn(home, 'config', 'lb', `port=${taken}`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/lb\/0 is in error after the config change: handler "reconfigure-nginx" failed/);
    expect(refused.stderr).toMatch(/nginx does not listen on .*:18582 after a reload/);
    expect(refused.stderr).toMatch(/bind\(\) to .*:18582 failed \(98: Address already in use\)/);
    // Rolled back: the unit says where nginx still is, and it still serves there.
    const [lb] = await units('lb/0');
    expect(lb).toMatchObject({ agent: 'error', workload: 'error' });
    expect(lb!.message).toContain(`(last: nginx on http://${m2.address}:${LB_PORT + 1}/`);
    expect(await getFrom(1, `http://${m2.address}:${LB_PORT + 1}/`)).toMatch(/^web\/[01]$/);

    // The port freed, resolve retries the same change and it applies.
    blocker.kill('SIGKILL');
    await new Promise((r) => blocker!.once('exit', r));
    expect((await rhizomeIn(home, 'resolve', 'lb/0')).code).toBe(0);
    await until('nginx on the new port', async () => ((await getFrom(1, `http://${m2.address}:${taken}/`)).startsWith('web/') ? true : undefined), 60_000);
    expect((await units('lb/0'))[0]).toMatchObject({ agent: 'idle', workload: 'active' });
  });

  it('a ZooKeeper ensemble that loses two of three machines says no quorum, and heals by itself', { timeout: 150_000 }, async () => {
    const [m0, m1, m2] = hosts.machines;
    await until('the ensemble formed', async () => {
      const zk = await units('zookeeper');
      return zk.length === 3 && zk.every((u) => u.workload === 'active' && /^(leader|follower), ensemble of 3 /.test(u.message)) ? true : undefined;
    }, 60_000);
    await run('ip', ['-n', m1!.ns, 'link', 'set', 'eth0', 'down']);
    await run('ip', ['-n', m2!.ns, 'link', 'set', 'eth0', 'down']);
    const t0 = Date.now();
    try {
      const survivor = await until('the survivor to say it has no quorum', async () => {
        const [u] = await units('zookeeper/0');
        return u?.workload === 'blocked' ? u : undefined;
      }, 60_000);
      process.stderr.write(`zookeeper/0 said 'no quorum' ${Date.now() - t0} ms after two machines went down\n`);
      // The web units beside it on machine 0 keep it in a mesh of three, so it is not isolated: its local
      // health stays good and their confirmations shorten the suspicion of the lost members (an agent alone
      // on its side waits the longest Lifeguard suspicion, up to 8 x 24 s at this size).
      expect(survivor.message).toBe("no quorum: 1 of the ensemble's 3 servers reachable, 2 needed; ZooKeeper serves again once enough of them are back");
      expect(survivor.agent).not.toBe('error');
    } finally {
      await run('ip', ['-n', m1!.ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', m2!.ns, 'link', 'set', 'eth0', 'up']);
    }
    // Back: every server serves again, none needed resolve.
    const t1 = Date.now();
    await until('the ensemble serving again', async () => {
      const zk = await units('zookeeper');
      if (zk.some((u) => u.agent === 'error')) throw new GiveUp(`a unit ended in error: ${JSON.stringify(zk)}`);
      return zk.length === 3 && zk.every((u) => u.workload === 'active' && /ensemble of 3 \(client/.test(u.message)) ? true : undefined;
    }, 90_000);
    process.stderr.write(`the ensemble served again ${Date.now() - t1} ms after the links came back (machine 0: ${m0!.address})\n`);
  });

  it('destroy with a machine down stops what it reaches, keeps the record, and finishes when run again', { timeout: 120_000 }, async () => {
    const [m0, m1, m2] = hosts.machines;
    const agentsOn = async (m: typeof m0): Promise<number> => {
      let n = 0;
      for (const pid of await hosts.pidsIn(m!)) if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('agent.mjs')) n++;
      return n;
    };
    await run('ip', ['-n', m1!.ns, 'link', 'set', 'eth0', 'down']);
    try {
      const r = await rhizomeIn(home, 'destroy', NAME);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`machine 1 \\(${m1!.ssh}\\) did not answer \\(zookeeper/1 may still run there\\)`));
      expect(r.stderr).toMatch(/The deployment is kept: run 'rhizome destroy trial2' again once the machine answers/);
      expect(await agentsOn(m0)).toBe(0);
      expect(await agentsOn(m2)).toBe(0);
      expect(await agentsOn(m1)).toBeGreaterThan(0); // its agent, and the supervisor that runs it
    } finally {
      await run('ip', ['-n', m1!.ns, 'link', 'set', 'eth0', 'up']);
    }
    const again = await rhizomeIn(home, 'destroy', NAME);
    expect(again.code, again.stderr).toBe(0);
    expect(await agentsOn(m1)).toBe(0);
  });
});
