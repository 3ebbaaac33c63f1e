/**
 * What an operator ran into trying the product by hand on three machines
 * (network namespaces, each with its own sshd: test/ssh-hosts.ts), each
 * case a regression test on one shared set of machines and one deployment:
 *   - upgrade-charm is how a charm's fix reaches units stuck in error on its
 *     bug: it rolls through them (it used to stop at the first unit not yet
 *     upgraded, leaving the service half on each version);
 *   - a whole cluster killed at once (a power cut) finds itself again: a
 *     unit bound to a wildcard keeps its gossip port across restarts, so
 *     the addresses its peers remember stay true (every unit used to come
 *     back on a new port and each stayed alone);
 *   - a machine whose link goes down: status says its units are unreachable
 *     within seconds (it used to hang for good on the dead SSH connection);
 *   - a unit added after `rhizome keys` rotated the key gets the key the
 *     cluster uses (it used to get the deployment's first key, could not
 *     join, and its machine's keyring was overwritten with the removed key);
 *   - deploying a bundle onto its running deployment adds what is new (it
 *     used to refuse: an operator could not add a service without
 *     destroying everything) and names what it leaves alone.
 * Skips (with the reason) without root or network namespaces.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { deploy, killUnit, readDeployment, unitOf } from '@rhizome/agent';
import { until } from '@rhizome/test-support';
import { rhizomeIn } from '../packages/agent/test/cli/harness';
import { converge, ROOT } from './e2e-support';
import { sshHostsUnavailable, useSshMachines, type SshHosts } from './ssh-hosts';

const unavailable = await sshHostsUnavailable();
if (unavailable) process.stderr.write(`skipping the operator trial tests: ${unavailable}\n`);

const run = promisify(execFile);
const NAME = 'trial';
const CHARMS = join(ROOT, 'packages/agent/test/fixtures/charms');
const UNITS = ['peers/0', 'peers/1', 'peers/2'];
let root = '';
let home = '';
let hosts: SshHosts;

useSshMachines({ unavailable, name: NAME, tmpPrefix: 'rz-trial-', count: 3, hosts: { prefix: 'tr', subnet: '10.237' } }, (bed) => {
  ({ root, home, hosts } = bed);
});

function bundle(charm: string): string {
  const m = hosts.machines;
  return [
    `name: ${NAME}`,
    'machines:',
    ...m.map((x, i) => `  "${i}": { ssh: ${x.ssh}, dir: ${x.dir} }`),
    'services:',
    `  peers: { charm: ${join(CHARMS, charm)}, to: [0, 1, 2] }`,
    '',
  ].join('\n');
}

describe.skipIf(unavailable !== undefined)('an operator on three machines', () => {
  it('upgrade-charm carries a fix to every unit in error on the old charm', { timeout: 150_000 }, async () => {
    const file = join(root, 'bundle.yaml');
    await writeFile(file, bundle('trial-peers-v1'));
    const err = await deploy(file, { home, timeoutMs: 90_000, noFsync: true }).catch((e: unknown) => e as { code?: string });
    expect(err).toMatchObject({ code: 'AGENT_ERR_UNIT_ERROR' });
    // Every unit ends in error on version 1's bug.
    await until('all three units in error', async () => {
      const s = await rhizomeIn(home, 'status', '--format', 'json');
      const units = (JSON.parse(s.stdout) as { units: { unit: string; agent: string }[] }).units;
      return units.filter((u) => u.agent === 'error').length === 3 ? true : undefined;
    }, 60_000);

    const up = await rhizomeIn(home, 'upgrade-charm', 'peers', '--path', join(CHARMS, 'trial-peers-v2'), '--timeout', '90');
    expect(up.code, up.stderr).toBe(0);
    for (const u of UNITS) expect(up.stdout).toMatch(new RegExp(`^${u}: upgraded and converged in `, 'm'));
    const d = await readDeployment(home, NAME);
    for (const u of UNITS) expect(unitOf(d, u).charmDir).toBe(join(CHARMS, 'trial-peers-v2'));
    const facts = JSON.parse((await rhizomeIn(home, '--json', 'facts', 'peers/2')).stdout) as Record<string, unknown>;
    expect(facts['trial.peers']).toEqual([hosts.machines[0]!.address, hosts.machines[1]!.address].sort());
  });

  it('a whole cluster killed at once finds itself again on the same ports', { timeout: 120_000 }, async () => {
    const before = await readDeployment(home, NAME);
    const ports = Object.fromEntries(UNITS.map((u) => [u, unitOf(before, u).gossipAddress]));
    const pids = Object.fromEntries(UNITS.map((u) => [u, unitOf(before, u).pid]));
    await Promise.all(UNITS.map((u) => killUnit(home, u, { deployment: NAME })));
    await until('every unit restarted by its supervisor', async () => {
      const d = await readDeployment(home, NAME);
      return UNITS.every((u) => unitOf(d, u).alive && unitOf(d, u).pid !== pids[u]) ? true : undefined;
    }, 60_000);
    // Converged means every unit sees the other two alive again.
    await converge(home, NAME, 60_000);
    const after = await readDeployment(home, NAME);
    for (const u of UNITS) expect(unitOf(after, u).gossipAddress).toBe(ports[u]);
  });

  it('a unit added after a key rotation gets the keys the cluster uses', { timeout: 120_000 }, async () => {
    const deploymentKeyring = join(home, NAME, 'keyring');
    const old = (await readFile(deploymentKeyring, 'utf8')).trim();
    const key = (await rhizomeIn(home, 'keygen')).stdout.trim();
    for (const step of [['install', key], ['use', key], ['remove', old]]) {
      const r = await rhizomeIn(home, 'keys', ...step);
      expect(r.code, r.stderr).toBe(0);
    }
    // rhizome keys keeps the deployment's copy in step (add-unit and start copy it to machines).
    expect((await readFile(deploymentKeyring, 'utf8')).trim()).toBe(key);
    // A copy left stale (the key rotated from another host) is refreshed from the live cluster before it is copied.
    await writeFile(deploymentKeyring, `${old}\n`, { mode: 0o600 });
    const added = await rhizomeIn(home, 'add-unit', 'peers', '--to', '0', '--timeout', '60');
    expect(added.code, added.stderr).toBe(0);
    expect((await readFile(join(hosts.machines[0]!.dir, NAME, 'keyring'), 'utf8')).trim()).toBe(key);
    const facts = JSON.parse((await rhizomeIn(home, '--json', 'facts', 'peers/3')).stdout) as Record<string, unknown>;
    expect(facts['trial.peers']).toHaveLength(3);
  });

  it('deploy onto the running deployment adds the new service, and leaves the rest alone', { timeout: 90_000 }, async () => {
    const file = join(root, 'more.yaml');
    await writeFile(file, `${bundle('trial-peers-v1')}  more: { charm: ${join(CHARMS, 'trial-peers-v2')}, to: [1], dashboard: 0 }\n`);
    const before = await readDeployment(home, NAME);
    const r = await rhizomeIn(home, 'deploy', file, '--timeout', '60');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^peers: runs the charm in .*trial-peers-v2, the bundle names .*trial-peers-v1; left as it is \('rhizome upgrade-charm peers --path /m);
    expect(r.stdout).toMatch(/^peers: has 4 unit\(s\), the bundle says 3; left as it is/m);
    expect(r.stdout).toMatch(/^deployment trial is running: added more\/0$/m);
    const after = await readDeployment(home, NAME);
    expect(unitOf(after, 'more/0').gossipAddress.split(':')[0]).toBe(hosts.machines[1]!.address);
    // The bundle's dashboard: the unit's agent serves the page on its machine's loopback.
    const url = (await readFile(join(unitOf(after, 'more/0').dataDir, 'dashboard.url'), 'utf8')).trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=/);
    // Its page script too, which the single-file agent on a machine has no node_modules to find.
    const script = new URL('/vendor/htm-preact.js', url).href;
    const fetched = await run('ip', ['netns', 'exec', hosts.machines[1]!.ns, process.execPath, '-e', `fetch(${JSON.stringify(script)}).then(async (r) => console.log(r.status, (await r.text()).length))`]);
    expect(fetched.stdout.trim()).toMatch(/^200 [1-9]\d{3,}$/);
    for (const u of [...UNITS, 'peers/3']) expect(unitOf(after, u).pid).toBe(unitOf(before, u).pid); // nothing restarted
    // Again: nothing new. A machine id the bundle moves elsewhere: refused, nothing changed.
    expect((await rhizomeIn(home, 'deploy', file)).stdout).toMatch(/nothing to add/);
    await writeFile(file, bundle('trial-peers-v2').replace(hosts.machines[2]!.ssh, hosts.machines[0]!.ssh));
    const moved = await rhizomeIn(home, 'deploy', file);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toMatch(/does not fit the running deployment "trial" \(nothing was changed\): machines\.2: is root@/);
    // The same machine added again under another spelling (no user): refused, not a second machine.
    const again = await rhizomeIn(home, 'add-machine', `ssh:${hosts.machines[0]!.address}`, '--dir', hosts.machines[0]!.dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/that machine is already machine 0 of deployment "trial"/);
  });

  it('a machine whose link goes down reads unreachable, promptly', { timeout: 90_000 }, async () => {
    const m2 = hosts.machines[2]!;
    await run('ip', ['-n', m2.ns, 'link', 'set', 'eth0', 'down']);
    try {
      const t0 = Date.now();
      const st = await rhizomeIn(home, 'status', '--format', 'plain');
      const took = Date.now() - t0;
      process.stderr.write(`status with machine 2 unreachable took ${took} ms\n`);
      expect(st.stdout).toMatch(/^peers\/2 +unreachable .*unreachable: machine 2 does not answer over SSH/m);
      expect(took).toBeLessThan(45_000); // it used to hang for good
    } finally {
      await run('ip', ['-n', m2.ns, 'link', 'set', 'eth0', 'up']);
    }
    // Last: nothing after it needs the cluster whole again (that takes a failure detection round trip).
  });
});
