/**
 * `rhizome upgrade-model` over SSH, on two machines that are network
 * namespaces with their own sshd (test/ssh-hosts.ts): a sender on machine 0
 * and a witness (test charm counter-witness: every relation message it
 * applies is appended to a fact, so one applied twice shows) on machine 1,
 * deployed with this repository's release (A).
 *   - release B: an installed copy of the agent package with another
 *     version string, run as its own CLI process; upgrade-model moves every
 *     unit onto it, one at a time; status shows B per unit; facts and
 *     relation data are as before, no relation message was applied again,
 *     and the next message is applied exactly once;
 *   - release C: a copy of B whose agent cannot start sender/0, the first
 *     unit reached; the upgrade stops there (exit 1, AGENT_ERR_UPGRADE),
 *     puts sender/0 back on B, and leaves the witness untouched (same
 *     process), still fed exactly once; with --json the per-unit table
 *     comes beside the error.
 * Releases B and C are installed, and their type-checks of the two charms
 * done, while the deployment starts: a release type-checks a charm once
 * (its charm cache is keyed by version), and on an idle machine that would
 * otherwise be most of an upgrade's time.
 * Skips (with the reason) without root or network namespaces.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deploy, readDeployment, unitOf } from '@rhizome/agent';
import { until } from '@rhizome/test-support';
import type { StatusSummary } from '../packages/agent/src/cli/status/model';
import type { UpgradeReport } from '../packages/agent/src/deploy/upgrade-agents';
import { agentPackageRoot, agentVersion } from '../packages/agent/src/runtime';
import { rhizomeIn } from '../packages/agent/test/cli/harness';
import { converge } from './e2e-support';
import { installRelease, runRelease } from './installed-release';
import { sshHostsUnavailable, useSshMachines, type SshHosts } from './ssh-hosts';

const unavailable = await sshHostsUnavailable();
if (unavailable) process.stderr.write(`skipping the upgrade-model tests: ${unavailable}\n`);

const NAME = 'upg';
const FIXTURES = join(agentPackageRoot(), 'test/fixtures/charms');
let root = '';
let home = '';
let hosts: SshHosts;

useSshMachines({ unavailable, name: NAME, tmpPrefix: 'rz-upgrade-', count: 2, hosts: { prefix: 'o2', subnet: '10.239' } }, (bed) => {
  ({ root, home, hosts } = bed);
});

const cliOf = (entry: string, ...args: string[]) => runRelease(entry, home, ...args);

async function ok(...args: string[]): Promise<string> {
  const r = await rhizomeIn(home, ...args);
  if (r.code !== 0) throw new Error(`rhizome ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}
const facts = async (unit: string): Promise<Record<string, unknown>> => JSON.parse(await ok('facts', unit, '--json')) as Record<string, unknown>;
const versions = async (): Promise<Record<string, string>> =>
  Object.fromEntries((JSON.parse(await ok('status', '--json')) as StatusSummary).units.map((u) => [u.unit, u.version]));
const WITNESSES = ['witness/0'];

/** Sends `value` and waits until the witness has seen it. */
async function send(value: number): Promise<void> {
  await ok('event', 'count', JSON.stringify({ value }));
  await until(`the witness saw ${value}`, async () => {
    for (const w of WITNESSES) if (!((await facts(w))['seen.sender-0'] as number[] | undefined)?.includes(value)) return undefined;
    return true;
  }, 30_000);
}

describe.skipIf(unavailable !== undefined)('rhizome upgrade-model over SSH', () => {
  it('moves every agent onto a new release one unit at a time, keeping state; stops at a unit that does not come back', { timeout: 240_000 }, async () => {
    const m = hosts.machines;
    const bundle = join(root, 'bundle.yaml');
    await writeFile(
      bundle,
      [
        `name: ${NAME}`,
        'machines:',
        ...m.map((x, i) => `  "${i}": { ssh: ${x.ssh}, dir: ${x.dir} }`),
        'services:',
        `  sender: { charm: ${join(FIXTURES, 'counter-sender')}, to: [0] }`,
        `  witness: { charm: ${join(FIXTURES, 'counter-witness')}, to: [1] }`,
        'relations:',
        '  - [sender:feed, witness:feed]',
        '',
      ].join('\n'),
    );
    const a = agentVersion();
    const b = `${a}-upgrade.1`;
    const c = `${a}-upgrade.2`;
    // Both releases installed and their charm type-checks done beside the deploy (see the file header).
    const warm = async (version: string, patch?: string): Promise<string> => {
      const cli = await installRelease(join(root, `release-${version.slice(-1)}`), version, patch);
      for (const charm of ['counter-sender', 'counter-witness']) {
        const r = await cliOf(cli, 'build-charm', join(FIXTURES, charm));
        if (r.code !== 0) throw new Error(`release ${version} build-charm ${charm} exited ${r.code}:\n${r.stderr}`);
      }
      return cli;
    };
    const releases = Promise.all([
      warm(b),
      warm(c, "if (process.argv.some((x) => x.includes('/sender-0/'))) { process.stderr.write('release C cannot run sender/0\\n'); process.exit(3); }"),
    ]);
    // Awaited (and its failure reported) however the deploy goes.
    releases.catch(() => undefined);
    const t0 = Date.now();
    await deploy(bundle, { home, timeoutMs: 90_000, noFsync: true });
    expect(await versions()).toEqual({ 'sender/0': a, 'witness/0': a });
    for (const v of [1, 2, 3]) await send(v);
    // One at a time: the in-process CLI captures this process's stdout.
    const before: Record<string, Record<string, unknown>> = {};
    for (const w of WITNESSES) before[w] = await facts(w);
    const senderBefore = await facts('sender/0');
    process.stderr.write(`upgrade-model: deployed and fed in ${Date.now() - t0} ms\n`);

    const [cliB, cliC] = await releases;
    process.stderr.write(`upgrade-model: releases B and C ready ${Date.now() - t0} ms after the deploy began\n`);

    // Release B: every unit moves, one at a time, and nothing is lost or applied twice.
    const t1 = Date.now();
    const up = await cliOf(cliB, 'upgrade-model', '--no-fsync', '--timeout', '60', '--json');
    expect(up.code, up.stderr).toBe(0);
    const report = JSON.parse(up.stdout) as UpgradeReport;
    // Its progress: how long each unit took to stop, to serve again and to converge.
    process.stderr.write(up.stderr);
    process.stderr.write(`upgrade-model: 2 units on 2 machines moved onto ${b} in ${Date.now() - t1} ms (${report.units.map((u) => `${u.unit} ${u.tookMs} ms`).join(', ')})\n`);
    expect(report).toMatchObject({ deployment: NAME, version: b });
    expect(report.units.map((u) => [u.unit, u.from, u.now, u.outcome])).toEqual([
      ['sender/0', a, b, 'upgraded'],
      ['witness/0', a, b, 'upgraded'],
    ]);
    expect(await versions()).toEqual({ 'sender/0': b, 'witness/0': b });
    const plain = await ok('status', '--format', 'plain');
    expect(plain).toMatch(new RegExp(`^witness/0\\*? +idle +active .* ${b.replace(/\./g, '\\.')} +witnessing`, 'm'));
    // State is durable across the restart: facts and relation data as they were, no message applied again.
    for (const w of WITNESSES) expect(await facts(w)).toEqual(before[w]);
    expect(await facts('sender/0')).toEqual(senderBefore);
    // The sender (restarted first) ran no departed while the witness restarted: it stayed in the mesh.
    expect((await ok('runs', 'sender/0', '--json')).match(/departed/g)).toBeNull();
    // Again: nothing to do (--dry-run says what a run would do).
    const again = await cliOf(cliB, 'upgrade-model', '--dry-run', '--json');
    expect((JSON.parse(again.stdout) as UpgradeReport).units.map((u) => [u.unit, u.outcome])).toEqual([['sender/0', 'already'], ['witness/0', 'already']]);
    // The next message is applied exactly once, by agents of release B.
    await send(4);
    for (const w of WITNESSES) {
      const f = await facts(w);
      expect(f['seen.sender-0']).toEqual([...(before[w]!['seen.sender-0'] as number[]), 4]);
      expect(f['changed.runs']).toBe((before[w]!['changed.runs'] as number) + 1);
    }

    // Release C cannot start sender/0, the first unit: the upgrade stops there and puts it back on B; the witness is untouched.
    const pidOf = async (unit: string): Promise<number> => unitOf(await readDeployment(home, NAME), unit).pid;
    const witnessPid = await pidOf('witness/0');
    const senderBeforeC = await facts('sender/0');
    const bad = await cliOf(cliC, 'upgrade-model', '--no-fsync', '--timeout', '60', '--json');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`error: upgrade to ${c.replace(/\./g, '\\.')} stopped at sender/0, which did not come back on it: the agent of sender/0 .* exited before it started:[\\s\\S]*release C cannot run sender/0`));
    expect(bad.stderr).toMatch(/sender\/0: restarted on its previous release .* and converged/);
    expect(bad.stderr).toMatch(/upgraded: \(none\); still on their old release: witness\/0 /);
    // With --json the per-unit table comes beside the error.
    const failed = JSON.parse(bad.stdout) as UpgradeReport & { error: { code: string; message: string } };
    expect(failed).toMatchObject({ deployment: NAME, version: c, error: { code: 'AGENT_ERR_UPGRADE' } });
    expect(failed.error.message).toMatch(/stopped at sender\/0/);
    expect(failed.units.map((u) => [u.unit, u.from, u.now, u.outcome])).toEqual([
      ['sender/0', b, b, 'failed'],
      ['witness/0', b, b, 'pending'],
    ]);
    expect(failed.units[0]!.detail).toMatch(/release C cannot run sender\/0[\s\S]*restarted on its previous release/);
    expect(await versions()).toEqual({ 'sender/0': b, 'witness/0': b });
    expect(await pidOf('witness/0')).toBe(witnessPid);
    expect(await facts('sender/0')).toEqual(senderBeforeC);
    // Back on B, the sender still feeds the witness, exactly once.
    await converge(home, NAME, 60_000);
    await send(5);
    for (const w of WITNESSES) expect(((await facts(w))['seen.sender-0'] as number[]).slice(-2)).toEqual([4, 5]);
  });
});
