/**
 * DurableStore under SIGKILL: a child process appends and acknowledges
 * records while it is killed at random instants, then restarted on the same
 * directory. The kill instants come from a seeded PRNG, printed;
 * STORE_CRASH_SEED=<n> replays the same instants (the child's progress at
 * each instant still depends on the machine's timing).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '@rhizome/gossip/testing';
import { compileFixture, testSeed } from '@rhizome/test-support';
import { DurableStore } from '../../src/persistence/durable-store';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../../..');
const fixture = join(here, 'fixtures/append-child.ts');

const children = new Set<ChildProcess>();
const dirs: string[] = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

interface Life {
  readyCount: number;
  readyLast: number;
  acks: number[];
}

/** Starts the child, lets it append for `runMs` after it is ready, SIGKILLs it. */
async function liveAndDie(dir: string, runMs: number): Promise<Life> {
  // Compiled once (compileFixture): plain node starts much faster than a TypeScript loader, so kills are cheap.
  const child = spawn(process.execPath, [await compileFixture(fixture), dir], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const life: Life = { readyCount: -1, readyLast: -2, acks: [] };
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const ready = new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`child not ready after 30 s; stderr: ${stderr}`)), 30_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      rej(new Error(`child exited early (${code ?? signal}); stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [kind, a, b] = line.split(' ');
      if (kind === 'ready') {
        life.readyCount = Number(a);
        life.readyLast = Number(b);
        clearTimeout(timer);
        res();
      } else if (kind === 'ack') life.acks.push(Number(a));
    });
  });
  await ready;
  await new Promise((r) => setTimeout(r, runMs));
  child.kill('SIGKILL');
  await exited;
  children.delete(child);
  return life;
}

describe('DurableStore under SIGKILL', () => {
  it('keeps every acknowledged record exactly once across 12 kills at random instants (the agent-level 50-kill test is test/agent-crash.test.ts)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rhizome-crash-'));
    dirs.push(dir);
    const seed = testSeed('STORE_CRASH_SEED', 'store crash test');
    const random = seededRandom(seed);
    const acked = new Set<number>();
    let totalAcks = 0;
    for (let kill = 0; kill < 12; kill++) {
      const life = await liveAndDie(dir, 5 + Math.floor(random() * 150));
      // What the child recovered covers everything acknowledged before.
      const maxAcked = acked.size === 0 ? -1 : Math.max(...acked);
      expect(life.readyLast).toBeGreaterThanOrEqual(maxAcked);
      expect(life.readyCount).toBe(life.readyLast + 1);
      for (const seq of life.acks) acked.add(seq);
      totalAcks += life.acks.length;
    }
    expect(totalAcks).toBeGreaterThan(0); // the kills did land while appending

    const { store, snapshot, records } = await DurableStore.open<{ seqs: number[] }, { seq: number }>({ dir });
    await store.close();
    const seqs = [...(snapshot?.seqs ?? []), ...records.map((r) => r.seq)];
    expect(new Set(seqs).size).toBe(seqs.length); // none twice
    for (const seq of acked) expect(seqs).toContain(seq); // none lost
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i)); // in order, no gaps
  }, 120_000);
});
