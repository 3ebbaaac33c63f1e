/**
 * Multi-process: agents as real processes on 127.0.0.1, driven through the
 * `rhizome` CLI: deploy (start + relate), converge, user events, a unit
 * killed with SIGKILL is reported departed and the others re-converge, it
 * restarts from its data directory and rejoins, add-unit, a failing handler
 * shown by status and resolved, bad input, destroy.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, readDeployment, type AgentStatus, type Deployment } from '@rhizome/agent';
import { rhizomeCommand } from '@rhizome/agent/cli';
import { until } from '@rhizome/test-support';

const ROOT = join(import.meta.dirname, '..');
const BUNDLE = join(ROOT, 'packages/agent/test/fixtures/bundles/cluster.yaml');
let home = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function rhizome(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, rhizomeCommand(args).args, { cwd: ROOT, env: { ...process.env, RHIZOME_HOME: home } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await rhizome(...args);
  if (r.code !== 0) throw new Error(`rhizome ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const dep = (): Promise<Deployment> => readDeployment(home, 'cluster');
async function status(unit: string): Promise<AgentStatus> {
  const d = await dep();
  return (await clientFor(d.units[unit]!)).get<AgentStatus>('/status');
}
async function facts(unit: string): Promise<Record<string, unknown>> {
  return JSON.parse(await ok('facts', unit, '--json')) as Record<string, unknown>;
}

async function killEverything(): Promise<void> {
  try {
    const d = await dep();
    for (const u of Object.values(d.units)) {
      if (u.pid > 0) {
        try {
          process.kill(-u.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  } catch {
    // no deployment file
  }
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rz-cluster-'));
});

afterAll(async () => {
  await rhizome('destroy', 'cluster').catch(() => undefined);
  await killEverything();
  await rm(home, { recursive: true, force: true });
}, 90_000);

describe('agents as real processes, through the CLI', () => {
  it('deploy, converge, kill (departed), re-converge, restart (rejoin), add-unit, failing handler, destroy', async () => {
    const deployed = await rhizome('deploy', BUNDLE, '--timeout', '90');
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stderr).toMatch(/converged in/);
    const d = await dep();
    expect(Object.keys(d.units).sort()).toEqual(['faulty/0', 'receiver/0', 'receiver/1', 'sender/0']);

    // status: a table for people, JSON for scripts
    const table = await ok('status');
    expect(table).toMatch(/receiver\/0\*? .*idle/);
    const json = JSON.parse(await ok('status', '--json')) as { units: { unit: string; up: boolean; status: AgentStatus }[] };
    expect(json.units.every((u) => u.up)).toBe(true);
    const sender = json.units.find((u) => u.unit === 'sender/0')!.status;
    expect(sender.relations.find((r) => r.remoteService === 'receiver')!.units.map((u) => u.unit)).toEqual(['receiver/0', 'receiver/1']);
    const members = JSON.parse(await ok('members', '--json')) as { name: string; status: string }[];
    expect(members.filter((m) => m.status === 'alive').map((m) => m.name).sort()).toEqual(['faulty/0', 'receiver/0', 'receiver/1', 'sender/0']);

    // user events reach every member; the sender publishes, receivers apply
    for (const v of [1, 2, 3]) await ok('event', 'count', JSON.stringify({ value: v }));
    await ok('wait', '--timeout', '60');
    for (const r of ['receiver/0', 'receiver/1']) expect((await facts(r))['last.sender-0']).toBe(3);
    const q = JSON.parse(await ok('query', 'ping', '--json', '--timeout', '3000')) as { responses: { from: string }[] };
    expect(q.responses.map((x) => x.from).sort()).toEqual(['faulty/0', 'receiver/0', 'receiver/1', 'sender/0']);

    // SIGKILL receiver/1: the mesh declares it failed, the sender sees departed, the rest re-converges
    await ok('kill', 'receiver/1');
    await until('sender reports receiver/1 departed', async () => {
      const rel = (await status('sender/0')).relations.find((r) => r.remoteService === 'receiver');
      return rel && rel.departed.includes('receiver/1') && !rel.units.some((u) => u.unit === 'receiver/1');
    }, 60_000);
    await ok('wait', '--timeout', '60');
    await ok('event', 'count', JSON.stringify({ value: 4 }));
    await until('receiver/0 has 4', async () => (await facts('receiver/0'))['last.sender-0'] === 4, 60_000);

    // restart from its data directory: it rejoins, catches up, and applied nothing twice
    const before = (await facts('receiver/0'))['applied.sender-0'];
    await ok('start', 'receiver/1', '--timeout', '90');
    const r1 = await facts('receiver/1');
    expect(r1['last.sender-0']).toBe(4);
    const applied = r1['applied.sender-0'] as number[];
    expect(applied.slice(0, 3)).toEqual([1, 2, 3]); // what it had committed before the crash survived
    expect(new Set(applied).size).toBe(applied.length);
    expect((await status('sender/0')).relations.find((r) => r.remoteService === 'receiver')!.units.map((u) => u.unit)).toEqual(['receiver/0', 'receiver/1']);
    expect((await facts('receiver/0'))['applied.sender-0']).toEqual(before);

    // add a unit: it joins the relation and gets the current value
    await ok('add-unit', 'receiver', '--timeout', '90');
    expect((await facts('receiver/2'))['last.sender-0']).toBe(4);

    // bad input: unknown unit, no token
    const unknown = await rhizome('facts', 'nosuch/0');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unit nosuch\/0 is not in the mesh .*its units are faulty\/0, receiver\/0/);
    const res = await fetch(`${(await dep()).units['sender/0']!.controlUrl}/facts`);
    expect(res.status).toBe(401);

    // a charm that throws: status names the handler and error; resolve --skip recovers
    await ok('event', 'explode');
    await until('faulty/0 in error', async () => (await status('faulty/0')).engine.state === 'error', 60_000);
    const st = await ok('status');
    expect(st).toMatch(/faulty\/0: error in handler explode on user\.explode, \d attempt\(s\): .*boom: the workload refused to start/);
    const notConverged = await rhizome('wait', '--timeout', '2');
    expect(notConverged.code).toBe(1);
    await ok('resolve', 'faulty/0', '--skip');
    await until('faulty/0 idle', async () => (await status('faulty/0')).engine.state === 'idle', 60_000);
    await ok('wait', '--timeout', '60');

    // logs carry the run id on every line of a run
    const log = await readFile(join(d.units['receiver/0']!.dataDir, 'agent.log'), 'utf8');
    const runLines = log.split('\n').filter((l) => l.includes('"msg":"run committed: feed.changed'));
    expect(runLines.length).toBeGreaterThan(0);
    for (const l of runLines) expect(JSON.parse(l).runId).toMatch(/^receiver\/0-\d+$/);

    // `logs` replays a unit's lines, run ids included
    const logs = await ok('logs', 'receiver/0', '-n', '200');
    expect(logs).toMatch(/INFO +receiver\/0 \[receiver\/0-\d+\] run committed: feed\.changed\(sender\/0\)/);

    // SIGTERM (stop): the unit finishes, leaves the mesh (left, not failed) and exits through the graceful path
    await ok('stop', 'receiver/2');
    await until('sender sees receiver/2 left and departed', async () => {
      const members = JSON.parse(await ok('members', '--json')) as { name: string; status: string }[];
      const rel = (await status('sender/0')).relations.find((r) => r.remoteService === 'receiver');
      return members.find((m) => m.name === 'receiver/2')?.status === 'left' && rel?.departed.includes('receiver/2');
    }, 60_000);
    const r2log = (await readFile(join(d.units['receiver/2']?.dataDir ?? join(home, 'cluster/receiver-2'), 'agent.log'), 'utf8')).trim().split('\n');
    expect(JSON.parse(r2log.at(-1)!).msg).toBe('agent stopped');

    // destroy: every process stops gracefully and the deployment is removed
    const pids = Object.values((await dep()).units).map((u) => u.pid);
    await ok('destroy');
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    await expect(dep()).rejects.toThrow(/no deployment "cluster"/);
  }, 300_000);
});
