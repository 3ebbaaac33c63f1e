import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecError } from '../../src/errors';
import { runCommand } from '../../src/executors/run-command';
import { until } from '@rhizome/test-support';

const dirs: string[] = [];
const strays: number[] = [];
afterEach(async () => {
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** True while `pid` is a live (not zombie) process. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

describe('runCommand', () => {
  it('passes input as a JSON file in RHIZOME_INPUT, env and cwd; captures output and exit code', async () => {
    const cwd = await realpath(await mkdtemp(join(tmpdir(), 'rhizome-cwd-')));
    dirs.push(cwd);
    const input = { facts: { port: 8080 }, relations: { db: [{ unit: 'pg/0', data: { host: '10.0.0.1' } }] } };
    const script = `
      const fs = require('node:fs');
      const file = process.env.RHIZOME_INPUT;
      const mode = (fs.statSync(file).mode & 0o777).toString(8);
      console.log(JSON.stringify({ input: JSON.parse(fs.readFileSync(file, 'utf8')), file, mode, cwd: process.cwd(), greeting: process.env.GREETING }));
      console.error('a warning');`;
    const result = await runCommand({
      command: process.execPath,
      args: ['-e', script],
      cwd,
      env: { GREETING: 'hello' },
      input,
    });
    expect(result.exitCode).toBe(0);
    const out = JSON.parse(result.stdout) as { input: unknown; file: string; mode: string; cwd: string; greeting: string };
    expect(out.input).toEqual(input);
    expect(out.mode).toBe('600');
    expect(out.cwd).toBe(cwd);
    expect(out.greeting).toBe('hello');
    expect(result.stderr).toBe('a warning\n');
    expect(result.durationMs).toBeGreaterThan(0);
    expect(existsSync(out.file)).toBe(false); // the input file is removed afterwards
  });

  it('does not run through a shell: arguments are passed verbatim', async () => {
    const result = await runCommand({ command: 'echo', args: ['$HOME', '`id`', 'a;b'] });
    expect(result.stdout).toBe('$HOME `id` a;b\n');
  });

  it('fails with a typed error carrying exit code and stderr tail on a non-zero exit', async () => {
    const err = await runCommand({
      command: process.execPath,
      args: ['-e', 'console.error("x".repeat(10000)); console.error("config file /etc/app.conf is invalid"); process.exit(3)'],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    const e = err as ExecError;
    expect(e.code).toBe('AGENT_ERR_EXEC_FAILED');
    expect(e.exitCode).toBe(3);
    expect(e.stderrTail.length).toBeLessThanOrEqual(4096);
    expect(e.stderrTail).toContain('config file /etc/app.conf is invalid');
    expect(e.message).toContain('exited with code 3');
    expect(e.message).toContain('config file /etc/app.conf is invalid');
  });

  it('kills the whole process group on timeout and says so', async () => {
    let grandchild = 0;
    const started = Date.now();
    const err = await runCommand({
      command: 'sh',
      // A grandchild that ignores nothing and would outlive a naive kill of `sh`.
      args: ['-c', 'sleep 60 & echo $! >&2; wait'],
      timeoutMs: 500,
      killGraceMs: 500,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    const e = err as ExecError;
    expect(e.code).toBe('AGENT_ERR_EXEC_TIMEOUT');
    expect(e.message).toContain('500 ms');
    grandchild = Number(e.stderrTail.trim());
    expect(grandchild).toBeGreaterThan(0);
    strays.push(grandchild);
    await until('the grandchild to be gone', () => !alive(grandchild), 10_000);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('kills the process group when its signal aborts (a handler past its deadline)', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const pending = runCommand({ command: 'sh', args: ['-c', 'sleep 60 & echo $! >&2; wait'], killGraceMs: 500, signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 300);
    const e = (await pending) as ExecError;
    expect(e).toBeInstanceOf(ExecError);
    expect(e.code).toBe('AGENT_ERR_EXEC_TIMEOUT');
    expect(e.message).toMatch(/handler passed its deadline/);
    const grandchild = Number(e.stderrTail.trim());
    expect(grandchild).toBeGreaterThan(0);
    strays.push(grandchild);
    await until('the grandchild to be gone', () => !alive(grandchild), 10_000);
    expect(Date.now() - started).toBeLessThan(30_000);
    // Already aborted: the command is stopped at once.
    const early = (await runCommand({ command: 'sleep', args: ['60'], killGraceMs: 200, signal: AbortSignal.abort() }).catch((x: unknown) => x)) as ExecError;
    expect(early.code).toBe('AGENT_ERR_EXEC_TIMEOUT');
  });

  it('does not hang on a background process that keeps the pipes open', async () => {
    const result = await runCommand({
      command: 'sh',
      args: ['-c', 'sleep 30 & echo $!'],
      killGraceMs: 300,
      timeoutMs: 20_000,
    });
    const pid = Number(result.stdout.trim());
    strays.push(pid);
    expect(result.exitCode).toBe(0);
    expect(pid).toBeGreaterThan(0);
  });

  it('bounds captured output to the last maxOutputBytes', async () => {
    const result = await runCommand({
      command: process.execPath,
      args: ['-e', 'process.stdout.write("a".repeat(3_000_000) + "THE END")'],
      maxOutputBytes: 1000,
    });
    expect(result.stdout.length).toBe(1000);
    expect(result.stdout.endsWith('THE END')).toBe(true);
    expect(result.stdoutTruncated).toBe(true);
    expect(result.stderrTruncated).toBe(false);
  });

  it('reports a missing program and rejects bad options', async () => {
    await expect(runCommand({ command: 'rhizome-no-such-program' })).rejects.toMatchObject({
      code: 'AGENT_ERR_EXEC_NOT_FOUND',
    });
    await expect(runCommand({ command: 'true', timeoutMs: -1 })).rejects.toMatchObject({
      code: 'AGENT_ERR_EXEC_BAD_OPTIONS',
    });
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    await expect(runCommand({ command: 'true', input: cyclic })).rejects.toMatchObject({
      code: 'AGENT_ERR_EXEC_BAD_OPTIONS',
    });
  });
});
