/**
 * The state format guard, on the compiled agent as a process: an agent
 * records its state format in <data dir>/state/FORMAT; one that finds a
 * newer format refuses to start (exit 1, AGENT_ERR_STATE_TOO_NEW naming
 * both versions), reading and changing nothing; a damaged FORMAT is named;
 * an older format is taken over and recorded as this release's.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GiveUp, until } from '@rhizome/test-support';
import { agentVersion, rhizomeCommand } from '../../src/runtime';
import { STATE_FORMAT } from '../../src/state/state-format';

const CHARM = join(import.meta.dirname, '../fixtures/charms/counter-sender');
const pids: number[] = [];
let dir = '';

afterAll(async () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited
    }
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts the agent; resolves with its exit code and output once it exits (SIGTERMed once it serves, when `stopWhenUp`). */
async function runAgent(stopWhenUp: boolean): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, rhizomeCommand(['agent', '--unit', 'sender/0', '--charm', CHARM, '--data-dir', dir, '--no-fsync']).args, { stdio: ['ignore', 'pipe', 'pipe'] });
  pids.push(child.pid!);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  if (stopWhenUp) {
    await until('the agent to say it runs', () => {
      if (child.exitCode !== null) throw new GiveUp(`agent did not start:\n${out}`);
      return /agent sender\/0 running/.test(out);
    }, 45_000);
    child.kill('SIGTERM');
  }
  const code = await Promise.race([exit, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`agent did not exit:\n${out}`)), 45_000).unref())]);
  return { code, out };
}

const FORMAT = (): string => join(dir, 'state', 'FORMAT');
/** Every file of the state directory and its bytes. */
async function stateFiles(): Promise<Record<string, string>> {
  const names = (await readdir(join(dir, 'state'))).filter((n) => n !== 'LOCK').sort();
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await readFile(join(dir, 'state', n))).toString('base64')] as const)));
}

describe('state format (an agent older than its state refuses to start)', () => {
  it('records its format, refuses a newer one naming both versions and changing nothing, names a damaged one, takes an older one over', { timeout: 120_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'rz-format-'));
    expect((await runAgent(true)).code).toBe(0);
    expect(JSON.parse(await readFile(FORMAT(), 'utf8'))).toEqual({ format: STATE_FORMAT, writtenBy: agentVersion() });

    // Written by a newer release: refused before anything is read or written.
    await writeFile(FORMAT(), JSON.stringify({ format: STATE_FORMAT + 1, writtenBy: '9.0.0' }));
    const before = await stateFiles();
    const refused = await runAgent(false);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain(
      `is in format ${STATE_FORMAT + 1}, written by rhizome 9.0.0; this agent (rhizome ${agentVersion()}) understands formats up to ${STATE_FORMAT}`,
    );
    expect(refused.out).toMatch(/Nothing was read or changed\. Run this unit on rhizome 9\.0\.0 or later/);
    expect(await stateFiles()).toEqual(before);

    // Damaged: named, nothing guessed.
    await writeFile(FORMAT(), 'two');
    const damaged = await runAgent(false);
    expect(damaged.code).toBe(1);
    expect(damaged.out).toMatch(/state\/FORMAT is damaged \(expected \{"format": N, "writtenBy": "VERSION"\}, found "two"\)/);

    // Written by an older release (format 1): taken over, and this release's format recorded.
    await writeFile(FORMAT(), JSON.stringify({ format: 1, writtenBy: '0.0.9' }));
    expect((await runAgent(true)).code).toBe(0);
    expect(JSON.parse(await readFile(FORMAT(), 'utf8'))).toEqual({ format: STATE_FORMAT, writtenBy: agentVersion() });
  });
});
