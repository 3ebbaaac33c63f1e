/**
 * runCommand: the `exec` executor. Runs one program (no shell) for a charm
 * handler and reports what happened.
 *
 * - The handler's input (facts, relation data, config: any JSON) is written
 *   to a private temp file (mode 0600) whose path is in `RHIZOME_INPUT`; the
 *   file is removed when the command ends.
 * - stdout and stderr are captured, each bounded to its last
 *   `maxOutputBytes` bytes (a chatty command can't exhaust the agent's memory).
 * - The command runs in its own process group. On timeout the whole group
 *   gets SIGTERM, then SIGKILL after `killGraceMs`, so children a script
 *   started die with it; the call fails with `AGENT_ERR_EXEC_TIMEOUT`.
 * - A non-zero exit or a death by signal fails with `AGENT_ERR_EXEC_FAILED`
 *   (exit code, signal and stderr tail in the error), so the handler that
 *   called it fails and its run rolls back. A program that can't be started
 *   fails with `AGENT_ERR_EXEC_NOT_FOUND`.
 * - Once the command has exited, its output is read for at most `killGraceMs`
 *   more: a daemon it started without redirecting stdout can't hang the run.
 */
import type { spawn as Spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError, ExecError } from '../errors';
import { logStep } from './step-log';

export interface RunCommandOptions {
  /** Program to run: a name looked up on PATH, or a path. Never run through a shell. */
  command: string;
  args?: readonly string[];
  /** Working directory; default: the agent's. */
  cwd?: string;
  /** Extra environment variables, on top of the agent's own (see `inheritEnv`). */
  env?: Readonly<Record<string, string>>;
  /** Start from the agent's environment (default true) or from `env` alone. */
  inheritEnv?: boolean;
  /** Kill the command (and its process group) after this long. */
  timeoutMs?: number;
  /** JSON passed to the command as a file named by `RHIZOME_INPUT`. */
  input?: unknown;
  /** Bytes of stdout and of stderr kept (the last ones). */
  maxOutputBytes?: number;
  /** Between SIGTERM and SIGKILL on timeout. */
  killGraceMs?: number;
  /**
   * Kill the command (and its process group) when this aborts, as on a
   * timeout. Pass the handler's `ctx.signal`: a handler that passes its
   * deadline then stops its commands instead of leaving them running.
   */
  signal?: AbortSignal;
}

export const DEFAULT_RUN_COMMAND_OPTIONS = Object.freeze({
  /** Ten minutes: package installs and service restarts are slow, hangs are not. */
  timeoutMs: 10 * 60_000,
  /** 1 MiB of each stream is plenty for a run report. */
  maxOutputBytes: 1024 * 1024,
  /** Time for a clean shutdown after SIGTERM before SIGKILL. */
  killGraceMs: 2_000,
  inheritEnv: true,
});

/** Bytes of stderr carried in an `ExecError` (and its message's last line). */
export const STDERR_TAIL_BYTES = 4096;

/** The environment variable naming the input JSON file. */
export const INPUT_ENV = 'RHIZOME_INPUT';

export interface CommandResult {
  command: string;
  args: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  /** True when the stream was longer than `maxOutputBytes` and its head was dropped. */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
}

/** Keeps the last `limit` bytes written to it. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const head = this.chunks[0]!;
      const excess = this.size - this.limit;
      this.truncated = true;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
      }
    }
  }

  toString(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export function tail(text: string, bytes: number = STDERR_TAIL_BYTES): string {
  const buf = Buffer.from(text, 'utf8');
  return buf.length <= bytes ? text : buf.subarray(buf.length - bytes).toString('utf8');
}

function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}

function checkOptions(opts: RunCommandOptions): void {
  const bad = (what: string): never => {
    throw new AgentError('AGENT_ERR_EXEC_BAD_OPTIONS', `runCommand: ${what}`);
  };
  if (typeof opts.command !== 'string' || opts.command === '') bad('`command` must be a non-empty string');
  if (opts.args !== undefined && !opts.args.every((a) => typeof a === 'string')) bad('`args` must be strings');
  for (const [name, value] of [
    ['timeoutMs', opts.timeoutMs],
    ['maxOutputBytes', opts.maxOutputBytes],
    ['killGraceMs', opts.killGraceMs],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) bad(`\`${name}\` must be a positive number`);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Runs a command; resolves with its result on exit code 0, throws `ExecError` otherwise. */
export async function runCommand(opts: RunCommandOptions): Promise<CommandResult> {
  checkOptions(opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_RUN_COMMAND_OPTIONS.timeoutMs;
  const maxOutputBytes = opts.maxOutputBytes ?? DEFAULT_RUN_COMMAND_OPTIONS.maxOutputBytes;
  const killGraceMs = opts.killGraceMs ?? DEFAULT_RUN_COMMAND_OPTIONS.killGraceMs;
  const inheritEnv = opts.inheritEnv ?? DEFAULT_RUN_COMMAND_OPTIONS.inheritEnv;
  const args = [...(opts.args ?? [])];
  const env: Record<string, string> = {};
  if (inheritEnv) for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, opts.env ?? {});

  let inputDir: string | undefined;
  if (opts.input !== undefined) {
    let json: string;
    try {
      json = JSON.stringify(opts.input);
    } catch (err) {
      throw new AgentError('AGENT_ERR_EXEC_BAD_OPTIONS', `runCommand: \`input\` is not JSON-serializable: ${String(err)}`);
    }
    inputDir = await mkdtemp(join(tmpdir(), 'rhizome-exec-'));
    const inputFile = join(inputDir, 'input.json');
    await writeFile(inputFile, json, { mode: 0o600 });
    env[INPUT_ENV] = inputFile;
  }

  try {
    // Loaded on first use: every agent imports the executors with the package index, most never run a command.
    const { spawn } = await import('node:child_process');
    return await spawnAndWait(spawn, opts.command, args, opts.cwd, env, timeoutMs, maxOutputBytes, killGraceMs, opts.signal);
  } finally {
    if (inputDir !== undefined) await rm(inputDir, { recursive: true, force: true });
  }
}

function spawnAndWait(
  spawn: typeof Spawn,
  command: string,
  args: string[],
  cwd: string | undefined,
  env: Record<string, string>,
  timeoutMs: number,
  maxOutputBytes: number,
  killGraceMs: number,
  abort: AbortSignal | undefined,
): Promise<CommandResult> {
  const started = performance.now();
  const stdout = new TailBuffer(maxOutputBytes);
  const stderr = new TailBuffer(maxOutputBytes);
  return new Promise<CommandResult>((resolve, reject) => {
    const child = spawn(command, args, {
      ...(cwd === undefined ? {} : { cwd }),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout kills its children too
      shell: false,
    });
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (timedOut) return;
      timedOut = true;
      if (child.pid !== undefined) {
        killGroup(child.pid, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), killGraceMs);
      }
    };
    const timer = setTimeout(stop, timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      stop();
    };
    if (abort?.aborted) queueMicrotask(onAbort);
    else abort?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));

    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      const notFound = err.code === 'ENOENT' || err.code === 'EACCES';
      const where = cwd === undefined ? '' : ` (cwd ${cwd})`;
      reject(
        new ExecError(
          notFound ? 'AGENT_ERR_EXEC_NOT_FOUND' : 'AGENT_ERR_EXEC_FAILED',
          notFound
            ? `cannot run '${command}'${where}: ${err.code === 'ENOENT' ? 'not found (or the cwd does not exist)' : 'permission denied'}. ` +
                `Install it, put it on the agent's PATH, or give its absolute path.`
            : `cannot run '${command}': ${err.message}`,
          { command, exitCode: null, signal: null, stderrTail: '' },
          { cause: err },
        ),
      );
    });

    // A background process the command left behind may hold our pipes open:
    // once the command itself has exited, stop waiting for them after a grace.
    let drainTimer: NodeJS.Timeout | undefined;
    child.once('exit', () => {
      drainTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, killGraceMs);
    });

    child.once('close', (code, signal) => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', onAbort);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      if (child.pid !== undefined && timedOut) killGroup(child.pid, 'SIGKILL');
      const durationMs = performance.now() - started;
      const err = stderr.toString();
      // The step's story goes to the calling run's log (see step-log.ts).
      const step = { kind: /ansible-playbook$/.test(command) ? ('ansible' as const) : ('exec' as const), command, args, exitCode: code, signal, durationMs, stdout: stdout.toString(), stderr: err };
      const details = { command, exitCode: code, signal, stderrTail: tail(err), stdoutTail: tail(stdout.toString()) };
      if (timedOut) {
        logStep({ ...step, error: aborted ? 'stopped: the handler passed its deadline' : `timed out after ${timeoutMs} ms` });
        reject(
          new ExecError(
            'AGENT_ERR_EXEC_TIMEOUT',
            aborted
              ? `'${command}' was killed with its process group: its handler passed its deadline (ctx.signal aborted) (stderr: ${lastLine(err) || 'empty'}).`
              : `'${command}' did not finish within ${timeoutMs} ms and was killed with its process group. ` +
                  `Raise timeoutMs if it legitimately needs longer, or find where it hangs (stderr: ${lastLine(err) || 'empty'}).`,
            details,
          ),
        );
        return;
      }
      if (code !== 0) {
        const how = code === null ? `was killed by ${signal ?? 'a signal'}` : `exited with code ${code}`;
        logStep({ ...step, error: how });
        reject(
          new ExecError('AGENT_ERR_EXEC_FAILED', `'${command}' ${how}: ${lastLine(err) || '(no stderr)'}`, details),
        );
        return;
      }
      logStep(step);
      resolve({
        command,
        args,
        exitCode: 0,
        stdout: stdout.toString(),
        stderr: err,
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
        durationMs,
      });
    });
  });
}
