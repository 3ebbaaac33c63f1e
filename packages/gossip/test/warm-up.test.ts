/**
 * warmUp() runs throwaway nodes over real sockets on 127.0.0.1 and must
 * leave nothing behind: no listener, no timer, nothing keeping Node alive.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { warmUp } from '../src/warm-up';
import { compileFixture } from '@rhizome/test-support';
import { REPO_ROOT } from './fixtures/proc';

const run = promisify(execFile);

describe('warmUp', () => {
  it('exchanges real frames and reports what it cost', async () => {
    const r = await warmUp({ size: 2, rounds: 5, encrypted: true });
    expect(r.ms).toBeGreaterThan(0);
    expect(r.cpuMs).toBeGreaterThan(0);
  });

  it('leaves nothing running: a process that only warms up exits by itself', async () => {
    const { stdout } = await run(process.execPath, [await compileFixture(join(import.meta.dirname, 'fixtures/warm-up-only.ts'))], { cwd: REPO_ROOT, timeout: 30_000 });
    const report = JSON.parse(stdout.trim()) as { ms: number; cpuMs: number };
    expect(report.cpuMs).toBeGreaterThan(0);
  });

  it('rejects bad options with a TypeError that names them', async () => {
    await expect(warmUp({ size: 1 })).rejects.toThrow(/size must be an integer 2\.\.16/);
    await expect(warmUp({ rounds: 0 })).rejects.toThrow(/rounds must be an integer 1\.\.1000/);
  });
});
