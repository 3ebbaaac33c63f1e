/**
 * Workload daemons a unit leaves behind, against real processes: a pid is
 * signalled only while /proc shows it is the declared workload (command
 * line and start time), a polite daemon ends with SIGTERM, a stubborn one
 * (and the workers in its process group) with SIGKILL after a bounded
 * wait; a charm's declaration is recorded in the data dir and read back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkOwnership, readProcess } from '../../src/deploy/process-identity';
import { recordWorkloads, stopUnitWorkloads, stopWorkload, WORKLOADS_FILE } from '../../src/deploy/workloads';
import { until } from '@rhizome/test-support';

const FIXTURES = join(import.meta.dirname, '../fixtures/charms');

// A stand-in daemon: args mode (polite | stubborn), marker, ready file, workers (worker | alone).
// It writes the ready file (holding its worker's pid, if any) once its SIGTERM handler is in place.
const DAEMON = `
const fs = require('node:fs');
const [mode, marker, readyFile, workers] = process.argv.slice(-4);
if (mode === 'stubborn') process.on('SIGTERM', () => {});
let worker = '';
if (workers === 'worker') {
  const w = require('node:child_process').spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)", '--', 'worker-of', marker], { stdio: 'ignore' });
  worker = String(w.pid);
}
fs.writeFileSync(readyFile, worker);
setInterval(() => {}, 1000);
`;

let dir = '';
const started: ChildProcess[] = [];
const workerPids: number[] = [];

interface Daemon {
  readonly pid: number;
  readonly workerPid?: number;
}

async function startDaemon(marker: string, opts: { stubborn?: boolean; worker?: boolean; detached?: boolean } = {}): Promise<Daemon> {
  const ready = join(dir, `ready-${started.length}`);
  const child = spawn(process.execPath, ['-e', DAEMON, '--', opts.stubborn ? 'stubborn' : 'polite', marker, ready, opts.worker ? 'worker' : 'alone'], { stdio: 'ignore', detached: opts.detached ?? false });
  started.push(child);
  const text = await until(`the test daemon ${marker} ready`, () => readFile(ready, 'utf8'), { timeoutMs: 10_000, intervalMs: 20 });
  const workerPid = text === '' ? undefined : Number(text);
  if (workerPid) workerPids.push(workerPid);
  return { pid: child.pid!, ...(workerPid ? { workerPid } : {}) };
}

const running = async (pid: number): Promise<boolean> => (await readProcess(pid)) !== undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rz-workloads-'));
});
afterEach(async () => {
  // Only what this test started, by pid (workers: only while they are still ours).
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of workerPids.splice(0)) if ((await readProcess(pid))?.cmdline.includes('worker-of')) process.kill(pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('whose pid is it (process-identity)', () => {
  it('reads a live process from /proc and knows an exited one is gone', async () => {
    const d = await startDaemon(`marker-${dir}`);
    const p = await readProcess(d.pid);
    expect(p).toMatchObject({ pid: d.pid, cmdline: expect.stringContaining(`marker-${dir}`) });
    expect(Math.abs(p!.startedAtMs - Date.now())).toBeLessThan(15_000);
    expect(checkOwnership(p!, { cmdline: [`marker-${dir}`], pidFileWrittenAtMs: Date.now() })).toEqual({ owned: true });
    process.kill(d.pid, 'SIGKILL');
    await until('the daemon gone', async () => !(await running(d.pid)), { timeoutMs: 5_000, intervalMs: 20 });
    expect(await readProcess(d.pid)).toBeUndefined();
  });

  it('refuses a command line without every declared string, and a process younger than its pid file', async () => {
    const d = await startDaemon(`marker-${dir}`);
    const p = (await readProcess(d.pid))!;
    expect(checkOwnership(p, { cmdline: [`marker-${dir}`, 'nginx: master process'], pidFileWrittenAtMs: Date.now() })).toEqual({
      owned: false,
      reason: expect.stringMatching(/does not contain "nginx: master process"$/),
    });
    expect(checkOwnership(p, { cmdline: [`marker-${dir}`], pidFileWrittenAtMs: Date.now() - 60_000 })).toEqual({ owned: false, reason: expect.stringMatching(/after its pid file was written .*: the pid was reused$/) });
  });
});

describe('stopping a workload left behind (stopWorkload)', () => {
  const declared = (marker: string) => ({ name: 'daemon', pidFile: join(dir, 'daemon.pid'), cmdline: [marker] });

  it('leaves a live pid alone when its command line is not the workload', async () => {
    const other = await startDaemon(`someone-else-${dir}`);
    await writeFile(join(dir, 'daemon.pid'), `${other.pid}\n`);
    const r = await stopWorkload('svc/0', declared(`marker-${dir}`), { termTimeoutMs: 200, killTimeoutMs: 200 });
    expect(r).toMatchObject({ outcome: 'left-alone', pid: other.pid, detail: expect.stringMatching(/^left pid \d+ alone: its command line .* does not contain "marker-.*"; it is not svc\/0's daemon$/) });
    // A quiet interval is the point: no event says "no signal came". A SIGTERM
    // or SIGKILL sent anyway would have ended the process well within it.
    await new Promise((r) => setTimeout(r, 300));
    expect(await running(other.pid)).toBe(true);
  });

  it('leaves a matching pid alone when it started after the pid file was written (a reused pid)', async () => {
    const reuser = await startDaemon(`marker-${dir}`);
    const pidFile = join(dir, 'daemon.pid');
    await writeFile(pidFile, `${reuser.pid}\n`);
    const written = new Date(Date.now() - 60_000);
    await utimes(pidFile, written, written);
    const r = await stopWorkload('svc/0', declared(`marker-${dir}`), { termTimeoutMs: 200, killTimeoutMs: 200 });
    expect(r).toMatchObject({ outcome: 'left-alone', detail: expect.stringContaining('the pid was reused') });
    // As above: a quiet interval in which a stray signal would have ended it.
    await new Promise((r) => setTimeout(r, 300));
    expect(await running(reuser.pid)).toBe(true);
  });

  it('stops the workload with SIGTERM when that is enough', async () => {
    const d = await startDaemon(`marker-${dir}`);
    await writeFile(join(dir, 'daemon.pid'), `${d.pid}\n`);
    const r = await stopWorkload('svc/0', declared(`marker-${dir}`), { termTimeoutMs: 5_000 });
    expect(r).toEqual({ unit: 'svc/0', name: 'daemon', pidFile: join(dir, 'daemon.pid'), pid: d.pid, outcome: 'terminated', detail: `stopped daemon (pid ${d.pid}) with SIGTERM` });
    expect(await running(d.pid)).toBe(false);
  });

  it('SIGKILLs a daemon that ignores SIGTERM, with the workers of its process group, after a bounded wait', async () => {
    const d = await startDaemon(`marker-${dir}`, { stubborn: true, worker: true, detached: true });
    expect(await running(d.workerPid!)).toBe(true);
    await writeFile(join(dir, 'daemon.pid'), `${d.pid}\n`);
    const t0 = Date.now();
    const r = await stopWorkload('svc/0', declared(`marker-${dir}`), { termTimeoutMs: 500, killTimeoutMs: 5_000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(Date.now() - t0).toBeLessThan(6_000);
    expect(r).toMatchObject({ outcome: 'killed', detail: `stopped daemon (pid ${d.pid}) with SIGKILL to its process group, 1 s after SIGTERM` });
    expect(await running(d.pid)).toBe(false);
    await until('its worker gone', async () => !(await running(d.workerPid!)), { timeoutMs: 5_000, intervalMs: 20 });
    expect(await running(d.workerPid!)).toBe(false);
  });

  it('says not running for a missing pid file, one without a pid, and a pid that has exited', async () => {
    const w = declared(`marker-${dir}`);
    expect(await stopWorkload('svc/0', w)).toMatchObject({ outcome: 'not-running', detail: expect.stringContaining('no pid file') });
    await writeFile(w.pidFile, 'garbage\n');
    expect(await stopWorkload('svc/0', w)).toMatchObject({ outcome: 'not-running', detail: expect.stringContaining('holds no pid') });
    const d = await startDaemon(`marker-${dir}`);
    await writeFile(w.pidFile, `${d.pid}\n`);
    process.kill(d.pid, 'SIGKILL');
    await until('the daemon gone', async () => !(await running(d.pid)), { timeoutMs: 5_000, intervalMs: 20 });
    expect(await stopWorkload('svc/0', w)).toMatchObject({ outcome: 'not-running', pid: d.pid, detail: expect.stringContaining('has exited') });
  });
});

describe("a charm's declared workloads, recorded in the data dir", () => {
  it('records them with the unit the agent will see, and stops what is still running from that record alone', async () => {
    const dataDir = join(dir, 'svc-0');
    const unitDir = join(dataDir, 'unit');
    await mkdir(unitDir, { recursive: true });
    const placement = { unit: 'svc/0', service: 'svc', charmDir: join(FIXTURES, 'workload-daemon'), dataDir, options: { marker: `marker-${dir}` } };
    expect(await recordWorkloads(placement)).toEqual([{ name: 'daemon', pidFile: join(unitDir, 'daemon.pid'), cmdline: [`marker-${dir}`, unitDir] }]);
    expect(JSON.parse(await readFile(join(dataDir, WORKLOADS_FILE), 'utf8'))).toEqual({ unit: 'svc/0', workloads: [{ name: 'daemon', pidFile: join(unitDir, 'daemon.pid'), cmdline: [`marker-${dir}`, unitDir] }] });

    const d = await startDaemon(`marker-${dir} ${unitDir}`);
    await writeFile(join(unitDir, 'daemon.pid'), `${d.pid}\n`);
    const reports = await stopUnitWorkloads({ unit: 'svc/0', dataDir }, { termTimeoutMs: 5_000 });
    expect(reports).toMatchObject([{ unit: 'svc/0', name: 'daemon', outcome: 'terminated', pid: d.pid }]);
    expect(await running(d.pid)).toBe(false);
  });

  it('has nothing to stop for a unit without a record, and reports a damaged record instead of failing', async () => {
    expect(await stopUnitWorkloads({ unit: 'svc/0', dataDir: dir })).toEqual([]);
    await writeFile(join(dir, WORKLOADS_FILE), '{"unit": "svc/0", "workloads": [{"name": "x"}]}');
    expect(await stopUnitWorkloads({ unit: 'svc/0', dataDir: dir })).toMatchObject([{ outcome: 'unreadable', detail: expect.stringContaining('is damaged') }]);
  });

  it("removes a stopped workload's declared data only when the unit goes for good, and never a path too short to be its own", async () => {
    const dataDir = join(dir, 'db-0');
    const unitDir = join(dataDir, 'unit');
    const cluster = join(dir, 'var-lib', 'db-0-cluster');
    await mkdir(unitDir, { recursive: true });
    await mkdir(join(cluster, 'base'), { recursive: true });
    await writeFile(join(cluster, 'base', 'table'), 'rows');
    const placement = { unit: 'db/0', service: 'db', charmDir: join(FIXTURES, 'workload-daemon'), dataDir, options: { marker: `marker-${dir}`, dataDir: cluster } };
    expect(await recordWorkloads(placement)).toMatchObject([{ name: 'daemon', dataDir: cluster }]);

    // stop (and kill, and upgrades) keep the data: the unit will start again on it
    const d = await startDaemon(`marker-${dir} ${unitDir}`);
    await writeFile(join(unitDir, 'daemon.pid'), `${d.pid}\n`);
    expect(await stopUnitWorkloads({ unit: 'db/0', dataDir }, { termTimeoutMs: 5_000 })).toMatchObject([{ outcome: 'terminated' }]);
    expect(await readFile(join(cluster, 'base', 'table'), 'utf8')).toBe('rows');

    // remove-unit and destroy: stopped, then its data goes
    const again = await startDaemon(`marker-${dir} ${unitDir}`);
    await writeFile(join(unitDir, 'daemon.pid'), `${again.pid}\n`);
    const reports = await stopUnitWorkloads({ unit: 'db/0', dataDir }, { termTimeoutMs: 5_000, removeData: true });
    expect(reports).toMatchObject([{ outcome: 'terminated' }, { outcome: 'data-removed', detail: `removed daemon's data ${cluster}` }]);
    await expect(readFile(join(cluster, 'base', 'table'), 'utf8')).rejects.toThrow(/ENOENT/);

    // a record edited by hand to a short path: kept, and said so (nothing exists there to lose if the guard failed)
    await writeFile(join(dataDir, WORKLOADS_FILE), JSON.stringify({ unit: 'db/0', workloads: [{ name: 'daemon', pidFile: join(unitDir, 'daemon.pid'), cmdline: ['x'], dataDir: '/rz-no-such-dir' }] }));
    expect(await stopUnitWorkloads({ unit: 'db/0', dataDir }, { removeData: true })).toMatchObject([{ outcome: 'not-running' }, { outcome: 'data-kept', detail: expect.stringContaining('at least three levels deep') }]);

    // and the charm may not declare one
    await expect(recordWorkloads({ ...placement, options: { ...placement.options, dataDir: '/var/lib' } })).rejects.toMatchObject({
      code: 'AGENT_ERR_CHARM_LOAD',
      message: expect.stringMatching(/workloads\(unit\)\[0\] \("daemon"\)\.dataDir must be an absolute, normalized path at least three levels deep/),
    });
  });

  it('refuses a declaration that could not tell the workload from a reused pid', async () => {
    const dataDir = join(dir, 'bad-0');
    await expect(recordWorkloads({ unit: 'bad/0', service: 'bad', charmDir: join(FIXTURES, 'bad-workloads'), dataDir, options: {} })).rejects.toMatchObject({
      code: 'AGENT_ERR_CHARM_LOAD',
      message: expect.stringMatching(/bad-workloads\/charm\.ts: workloads\(unit\)\[0\] \("daemon"\)\.cmdline must list at least one/),
    });
  });
});
