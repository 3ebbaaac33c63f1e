import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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

describe('rhizome agent (foreground process)', () => {
  it('serves, then on SIGTERM stops gracefully and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-fg-'));
    dirs.push(dir);
    const child = spawn(process.execPath, rhizomeCommand(['agent', '--unit', 'faulty/0', '--charm', join(CHARMS, 'faulty'), '--data-dir', dir, '--option', 'size=3']).args, { stdio: ['ignore', 'pipe', 'pipe'] });
    pids.push(child.pid!);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await until('the agent to say it runs', () => {
      if (child.exitCode !== null) throw new GiveUp(`agent did not start:\n${out}`);
      return /agent faulty\/0 running: control http:\/\/127\.0\.0\.1:\d+, gossip 127\.0\.0\.1:\d+/.test(out);
    }, 45_000);
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
