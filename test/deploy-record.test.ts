/**
 * The deployment record under concurrent CLI commands, and remove-unit, on
 * the hadoop bundle with real agent processes on 127.0.0.1:
 *   - two `rhizome add-unit datanode` processes at once get two names;
 *   - a burst of concurrent `kill`/`start` processes leaves a record that
 *     matches the agent processes actually running (found in /proc);
 *   - `remove-unit` a datanode: gone from the namenode's `workers`, from
 *     `status`, and from the namenode's relation state (no link, no
 *     departed entry left for it), its directory deleted; its number is
 *     not handed out again.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, deploy, destroy, readDeployment, unitOf, type AgentStatus } from '@rhizome/agent';
import { rhizomeCommand } from '@rhizome/agent/cli';
import { converge, ROOT, unitDir } from './e2e-support';
import { until } from '@rhizome/test-support';

const NAME = 'hadoop';
let home = '';

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rhizome-record-'));
});
afterAll(async () => {
  await destroy(home, { deployment: NAME }).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
}, 60_000);

/** Runs the CLI as its own process (real concurrency between commands). */
function cli(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, rhizomeCommand(['--home', home, '--deployment', NAME, ...args]).args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Pids of agent processes serving from `dataDir`, per /proc (the truth the record must match). */
async function agentPidsFor(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const args = cmd.split('\0');
    const i = args.indexOf('--data-dir');
    if (args.includes('agent') && i >= 0 && args[i + 1] === dataDir) {
      const st = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      if (!/\) [ZX] /.test(st)) pids.push(Number(entry));
    }
  }
  return pids;
}

const workers = async () => (await readFile(join(unitDir(home, NAME, 'namenode/0'), 'workers'), 'utf8').catch(() => '')).split('\n').filter(Boolean);

describe('the deployment record under concurrent commands, and remove-unit', () => {
  it('gives concurrent add-units distinct names, keeps the record true through a kill/start burst, and removes a unit for good', { timeout: 240_000 }, async () => {
    await deploy(join(ROOT, 'examples/hadoop/bundle.yaml'), { home, timeoutMs: 120_000, noFsync: true });

    const added = await Promise.all([cli('add-unit', 'datanode', '--no-wait', '--no-fsync'), cli('add-unit', 'datanode', '--no-wait', '--no-fsync')]);
    for (const a of added) expect(a.code, a.out).toBe(0);
    const names = added.map((a) => /started (datanode\/\d+)/.exec(a.out)?.[1]).sort();
    expect(names).toEqual(['datanode/3', 'datanode/4']);
    let d = await readDeployment(home, NAME);
    expect(Object.keys(d.units).sort()).toEqual(['datanode/0', 'datanode/1', 'datanode/2', 'datanode/3', 'datanode/4', 'namenode/0']);

    // A burst: kills and starts of two units, all at once, as separate processes. Some fail
    // (not running / already running): what matters is that the record ends up true.
    const burst = ['kill datanode/0', 'start datanode/0', 'kill datanode/1', 'start datanode/1', 'kill datanode/0', 'kill datanode/1', 'start datanode/0'];
    const results = await Promise.all(burst.map((c) => cli(...c.split(' '), ...(c.startsWith('start') ? ['--no-wait', '--no-fsync'] : []))));
    expect(results.some((r) => r.code === 0)).toBe(true);
    d = await readDeployment(home, NAME);
    for (const u of Object.values(d.units)) {
      const running = await agentPidsFor(u.dataDir);
      if (u.state === 'running') expect(running, `${u.unit} is recorded running at pid ${u.pid}`).toEqual([u.pid]);
      else expect(running, `${u.unit} is recorded ${u.state}`).toEqual([]);
    }
    for (const u of ['datanode/0', 'datanode/1']) if (d.units[u]!.state !== 'running') expect((await cli('start', u, '--no-wait', '--no-fsync')).code).toBe(0);
    await converge(home, NAME);
    await until('five workers', async () => ((await workers()).length === 5 ? true : undefined), 60_000);

    // remove-unit: gone from workers, status, the namenode's relation state, and the disk.
    const gone = unitOf(await readDeployment(home, NAME), 'datanode/1');
    const removed = await cli('remove-unit', 'datanode/1');
    expect(removed.code, removed.out).toBe(0);
    await converge(home, NAME);
    await until('datanode-1 out of workers', async () => (!(await workers()).includes('datanode-1') ? true : undefined), 60_000);
    expect(await workers()).toHaveLength(4);
    d = await readDeployment(home, NAME);
    expect(d.units['datanode/1']).toBeUndefined();
    await expect(stat(gone.dataDir)).rejects.toThrow();
    expect(await agentPidsFor(gone.dataDir)).toEqual([]);
    const status = await cli('status', '--json');
    expect(status.out).not.toContain('datanode/1');
    const nn = await clientFor(unitOf(d, 'namenode/0'), 5_000);
    await until('the namenode forgot datanode/1', async () => {
      const s = await nn.get<AgentStatus>('/status');
      const mentions = s.relations.some((r) => r.departed.includes('datanode/1') || r.units.some((x) => x.unit === 'datanode/1') || r.links.some((l) => l.remoteUnit === 'datanode/1'));
      return mentions ? undefined : true;
    }, 60_000);

    // Its number is never reused.
    const again = await cli('add-unit', 'datanode', '--no-wait', '--no-fsync');
    expect(again.out).toContain('started datanode/5');
  });
});
