/**
 * Deploying a bundle again over its deployment when nothing of it runs
 * (every agent killed: a crash): the stopped deployment is cleared first
 * (destroy.ts, clearStoppedDeployment), so the workload daemon its killed
 * unit left behind is stopped, its old state is gone, and the new unit
 * starts fresh. Real agent processes (compiled: `pnpm build` first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deploy, destroy, killUnit, readDeployment, unitOf } from '../../src/index';
import { unitAlive } from '../../src/deploy/deployment';
import { readProcess } from '../../src/deploy/process-identity';
import { until } from '@rhizome/test-support';

const FIXTURES = join(import.meta.dirname, '../fixtures/charms');
let dir = '';
let daemon: ChildProcess | undefined;

afterAll(async () => {
  if (dir) await destroy(join(dir, 'home'), { deployment: 'redeploy' }).catch(() => undefined);
  if (daemon?.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('deploy over a deployment whose agents were all killed', () => {
  it('stops the workload they left, removes the old deployment, and starts afresh', { timeout: 90_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'rz-redeploy-'));
    const home = join(dir, 'home');
    const marker = `redeploy-marker-${process.pid}`;
    const bundle = join(dir, 'bundle.yaml');
    await writeFile(bundle, `name: redeploy\nservices:\n  svc: { charm: ${join(FIXTURES, 'workload-daemon')}, units: 1, options: { marker: ${marker} } }\n`);
    const opts = { home, noFsync: true, timeoutMs: 60_000, charmCache: join(dir, 'cache') };
    const first = await deploy(bundle, opts);
    const old = unitOf(first.deployment, 'svc/0');

    // The workload the charm declares: a daemon whose command line holds the marker and the unit's dir.
    const unitDir = join(old.dataDir, 'unit');
    daemon = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', marker, unitDir], { stdio: 'ignore', detached: true });
    await until('the daemon running', async () => (await readProcess(daemon!.pid!))?.cmdline.includes(marker), { timeoutMs: 10_000, intervalMs: 20 });
    await writeFile(join(unitDir, 'daemon.pid'), `${daemon.pid}\n`);
    await writeFile(join(old.dataDir, 'left-behind'), 'state of the killed deployment');

    await killUnit(home, 'svc/0', { deployment: 'redeploy' });
    expect(await readProcess(daemon.pid!)).toBeDefined();

    const phases: string[] = [];
    const second = await deploy(bundle, { ...opts, onPhase: (p) => phases.push(p) });
    expect(phases).toContain(`removing the stopped deployment redeploy left in ${join(home, 'redeploy')}`);
    expect(phases.some((p) => p.startsWith('svc/0: ') && p.includes('daemon'))).toBe(true);
    await until('the old daemon stopped', async () => (await readProcess(daemon!.pid!)) === undefined, { timeoutMs: 15_000, intervalMs: 50 });
    const now = unitOf(await readDeployment(home, 'redeploy'), 'svc/0');
    expect(now.pid).not.toBe(old.pid);
    expect(unitAlive(now)).toBe(true);
    expect(second.deployment.createdAt).toBeGreaterThan(first.deployment.createdAt);
    await expect(readProcess(old.pid)).resolves.toBeUndefined();
    await expect(access(join(old.dataDir, 'left-behind'))).rejects.toThrow();
  });
});
