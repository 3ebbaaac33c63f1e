import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectToAgent } from '../../src/index';
import { rhizomeCommand } from '../../src/runtime';
import { GiveUp, until } from '@rhizome/test-support';

const CHARMS = join(import.meta.dirname, '../fixtures/charms');
const pids: number[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited
    }
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** `rhizome agent ARGS` in the foreground, resolved once it says it runs (its output in the error if it exits first). */
async function startAgent(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, rhizomeCommand(['agent', ...args]).args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  pids.push(child.pid!);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await until('the agent to say it runs', () => {
    if (child.exitCode !== null) throw new GiveUp(`agent did not start:\n${out}`);
    return ready.test(out);
  }, 45_000);
  return { child, exit };
}

describe('rhizome agent (foreground process)', () => {
  it('serves, then on SIGTERM stops gracefully and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-fg-'));
    dirs.push(dir);
    const { child, exit } = await startAgent(['--unit', 'faulty/0', '--charm', join(CHARMS, 'faulty'), '--data-dir', dir, '--option', 'size=3'], /agent faulty\/0 running: control http:\/\/127\.0\.0\.1:\d+, gossip 127\.0\.0\.1:\d+/);
    const client = await connectToAgent(dir);
    const status = await client.get<{ unit: string; workload: { state: string } }>('/status');
    expect(status.unit).toBe('faulty/0');
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    const log = (await readFile(join(dir, 'agent.log'), 'utf8')).trim().split('\n');
    expect(log.some((l) => JSON.parse(l).msg === 'signal received, stopping')).toBe(true);
    expect(JSON.parse(log.at(-1)!).msg).toBe('agent stopped');
  });
});

/** Pids of a process's children (every thread's), from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`);
  const lists = await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')));
  return lists.flatMap((l) => l.split(' ').filter(Boolean).map(Number));
}

describe('rhizome agent --charm without a compiled module', () => {
  it('compiles the charm in a process of its own: nothing of esbuild stays beside the agent', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-fgc-'));
    dirs.push(dir);
    const env = { ...process.env, RHIZOME_CHARM_CACHE: join(dir, 'cache') };
    const { child, exit } = await startAgent(['--unit', 'kv/0', '--charm', join(CHARMS, 'kv'), '--data-dir', join(dir, 'kv')], /agent kv\/0 running/, env);
    // Compiled in the agent, esbuild's service process (~40 MB) stayed its child for good.
    expect(await childrenOf(child.pid!)).toEqual([]);
    const status = await (await connectToAgent(join(dir, 'kv'))).get<{ unit: string }>('/status');
    expect(status.unit).toBe('kv/0');
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });

  it("stops with the compiler's message, naming the file, line and column", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-fgc-'));
    dirs.push(dir);
    const env = { ...process.env, RHIZOME_CHARM_CACHE: join(dir, 'cache') };
    const r = spawnSync(process.execPath, rhizomeCommand(['agent', '--unit', 'b/0', '--charm', join(CHARMS, 'broken-syntax'), '--data-dir', join(dir, 'b')]).args, { encoding: 'utf8', env, timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/cannot compile charm .*broken-syntax\/charm\.ts:\ncharm\.ts:\d+:\d+: /);
  });
});

const logLines = async (dir: string): Promise<Array<{ msg: string; level: number; err?: { message?: string } }>> =>
  (await readFile(join(dir, 'agent.log'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; level: number; err?: { message?: string } });

describe('charm code failing outside its handlers (the agent process)', () => {
  it('logs a rejection nobody awaits and keeps running; logs an uncaught throw as fatal and exits 70 with its committed runs kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-guard-'));
    dirs.push(dir);
    const start = () => {
      const child = spawn(process.execPath, rhizomeCommand(['agent', '--unit', 'sloppy/0', '--charm', join(CHARMS, 'sloppy'), '--data-dir', dir]).args, { stdio: ['ignore', 'pipe', 'pipe'] });
      pids.push(child.pid!);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      return { child, exit, out: () => out };
    };
    const started = async (p: ReturnType<typeof start>): Promise<void> => {
      await until('the agent to say it runs', () => {
        if (p.child.exitCode !== null) throw new GiveUp(`agent did not start:\n${p.out()}`);
        return /agent sloppy\/0 running/.test(p.out());
      }, 45_000);
    };
    const first = start();
    await started(first);
    let client = await connectToAgent(dir);
    expect(await client.post('/actions/float', {})).toMatchObject({ result: { ok: true } });
    // The rejection is in the log, and the agent still answers and committed the run.
    await until('the rejection in the log', async () => (await logLines(dir)).some((l) => /unhandled promise rejection/.test(l.msg) && l.err?.message === 'floating boom'), 10_000);
    const facts = await client.get<Record<string, unknown>>('/facts');
    expect(JSON.stringify(facts)).toContain('floated');
    expect(first.child.exitCode).toBe(null);

    // A throw from a timer: fatal in the log, exit 70; the next start has the committed fact.
    await client.post('/actions/throw-later', {}).catch(() => undefined);
    expect(await first.exit).toBe(70);
    const fatal = (await logLines(dir)).find((l) => l.level === 60);
    expect(fatal?.msg).toMatch(/uncaught exception/);
    expect(fatal?.err?.message).toBe('late bang');
    expect(first.out()).toMatch(/fatal: agent sloppy\/0: uncaught exception: Error: late bang/);

    const second = start();
    await started(second);
    client = await connectToAgent(dir);
    expect(JSON.stringify(await client.get('/facts'))).toContain('floated');
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
  });
});
