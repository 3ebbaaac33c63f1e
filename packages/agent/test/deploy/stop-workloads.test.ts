/**
 * `rhizome --data-dir D stop-workloads`: what an SSH deployment runs on a
 * machine once a unit's agent and supervisor are gone. A real process
 * stands in for the workload daemon; the command stops it (SIGTERM) from
 * the unit's workloads.json alone and prints the report as JSON.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli';
import { writeWorkloadManifest } from '../../src/deploy/workloads';

let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  try {
    return { code: await runCli(args), stdout };
  } finally {
    out.mockRestore();
  }
}

describe('stop-workloads (run on a machine by SSH deployments)', () => {
  it("stops the daemons a unit's workloads.json names, and says so", async () => {
    dir = await mkdtemp(join(tmpdir(), 'rz-stop-workloads-'));
    const marker = `rz-workload-${process.pid}`;
    const daemon = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore', detached: true });
    const exited = new Promise<void>((r) => daemon.once('exit', () => r()));
    // The daemon writes its pid file after it starts (a pid file older than its process would be a reused pid).
    await new Promise((r) => setTimeout(r, 50));
    await writeFile(join(dir, 'daemon.pid'), `${daemon.pid}\n`);
    await writeWorkloadManifest(dir, 'web/0', [{ name: 'daemon', pidFile: join(dir, 'daemon.pid'), cmdline: [marker] }]);

    const r = await cli('--data-dir', dir, 'stop-workloads');
    expect(r.code).toBe(0);
    const reports = JSON.parse(r.stdout) as { name: string; pid?: number; outcome: string }[];
    expect(reports).toEqual([expect.objectContaining({ name: 'daemon', pid: daemon.pid, outcome: 'terminated' })]);
    await exited;

    // Nothing left: a second run finds it not running.
    expect((JSON.parse((await cli('--data-dir', dir, 'stop-workloads')).stdout) as { outcome: string }[])[0]!.outcome).toBe('not-running');
  });

  it('removes the declared data of a stopped workload with --remove-data (remove-unit, destroy), only then', async () => {
    const data = join(dir, 'var-lib', 'web-0');
    await mkdir(data, { recursive: true });
    await writeWorkloadManifest(dir, 'web/0', [{ name: 'daemon', pidFile: join(dir, 'daemon.pid'), cmdline: ['rz-none'], dataDir: data }]);
    expect((JSON.parse((await cli('--data-dir', dir, 'stop-workloads')).stdout) as { outcome: string }[]).map((x) => x.outcome)).toEqual(['not-running']);
    await expect(access(data)).resolves.toBeUndefined();
    const r = await cli('--data-dir', dir, 'stop-workloads', '--remove-data');
    expect((JSON.parse(r.stdout) as { outcome: string }[]).map((x) => x.outcome)).toEqual(['not-running', 'data-removed']);
    await expect(access(data)).rejects.toThrow(/ENOENT/);
  });

  it('needs --data-dir: bad usage, exit 2', async () => {
    expect((await cli('stop-workloads')).code).toBe(2);
  });
});
