/**
 * rhizome-supervisor (src/deploy/supervisor-main.ts), with real processes:
 * a stand-in agent that "serves" (writes agent.json naming its pid) is
 * started again after a SIGKILL; SIGTERM stops both; SIGUSR2 is passed on
 * (a stop for a restart) and stops both; an agent that exits
 * before it ever served is not restarted (exit 3, no crash loop).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '@rhizome/test-support';

// The compiled supervisor, as deploy copies it to machines (`pnpm build` makes it).
const SUPERVISOR = join(import.meta.dirname, '../../dist/supervisor.js');
const SERVING_AGENT = "require('fs').writeFileSync('agent.json', JSON.stringify({ pid: process.pid })); setInterval(() => {}, 1000)";

const started: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of started.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function supervise(dir: string, agentScript: string): ChildProcess {
  const c = spawn(process.execPath, [SUPERVISOR, dir, '--', process.execPath, '-e', agentScript], { stdio: 'ignore' });
  started.push(c);
  return c;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function servingPid(dir: string, not?: number): Promise<number> {
  return until(`a serving agent in ${dir}`, async () => {
    const pid = await readFile(join(dir, 'agent.json'), 'utf8').then((t) => (JSON.parse(t) as { pid: number }).pid, () => 0);
    return pid > 0 && pid !== not && alive(pid) ? pid : undefined;
  }, 20_000);
}

const exitOf = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

describe('rhizome-supervisor', () => {
  it('starts a SIGKILLed agent again, and on SIGTERM stops it and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-sup-'));
    dirs.push(dir);
    const sup = supervise(dir, SERVING_AGENT);
    const first = await servingPid(dir);
    process.kill(first, 'SIGKILL');
    const second = await servingPid(dir, first);
    expect(second).not.toBe(first);
    expect(JSON.parse(await readFile(join(dir, 'supervisor.json'), 'utf8'))).toMatchObject({ pid: sup.pid, restarts: 1, agentPid: second });
    sup.kill('SIGTERM');
    expect(await exitOf(sup)).toBe(0);
    expect(alive(second)).toBe(false);
  });

  it('on SIGUSR2 (upgrade-model) passes SIGUSR2 on to the agent, does not restart it, and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-sup-'));
    dirs.push(dir);
    // The stand-in agent records the signal it got, then exits as a stopped agent does.
    const agent = `${SERVING_AGENT}; process.on('SIGUSR2', () => { require('fs').writeFileSync('signal', 'SIGUSR2'); process.exit(0); })`;
    const sup = supervise(dir, agent);
    const pid = await servingPid(dir);
    sup.kill('SIGUSR2');
    expect(await exitOf(sup)).toBe(0);
    expect(await readFile(join(dir, 'signal'), 'utf8')).toBe('SIGUSR2');
    expect(alive(pid)).toBe(false);
    expect(JSON.parse(await readFile(join(dir, 'supervisor.json'), 'utf8'))).toMatchObject({ restarts: 0 });
  });

  it('does not restart an agent that exits before it ever served', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-sup-'));
    dirs.push(dir);
    const sup = supervise(dir, 'process.exit(2)');
    expect(await exitOf(sup)).toBe(3);
    expect(JSON.parse(await readFile(join(dir, 'supervisor.json'), 'utf8'))).toMatchObject({ restarts: 0 });
  });
});
