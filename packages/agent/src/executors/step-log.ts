/**
 * Attaches what an executor did (an exec or an Ansible step: command, exit,
 * duration, the tail of its output) to the run that called it, as one log
 * line carrying the run id, so `rhizome logs --run ID` tells a run's whole
 * story. The agent enters a run's logger around each handler
 * (`withStepLog`); executors call `logStep` when a step ends. Outside a run
 * (tests, scripts) nothing is logged.
 *
 * Output is capped: a step's line carries at most STEP_OUTPUT_LOG_BYTES of
 * stdout and of stderr (their last bytes), so a chatty playbook cannot blow
 * the log tail's record limit or the log file.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The part of a pino logger the step log needs. */
export interface StepLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Bytes of stdout and of stderr kept in a step's log line (the last ones). */
export const STEP_OUTPUT_LOG_BYTES = 4096;

// One store per process, even if the charm's bundle and the agent load this module twice.
const STORE_KEY = Symbol.for('rhizome.step-log');
const current: AsyncLocalStorage<StepLogger> = ((globalThis as Record<symbol, unknown>)[STORE_KEY] ??= new AsyncLocalStorage<StepLogger>()) as AsyncLocalStorage<StepLogger>;

/** Runs `fn` with `log` as the step logger of everything it (asynchronously) calls. */
export function withStepLog<T>(log: StepLogger, fn: () => T): T {
  return current.run(log, fn);
}

function capped(text: string): { text: string; truncated: boolean } {
  const bytes = Buffer.byteLength(text);
  if (bytes <= STEP_OUTPUT_LOG_BYTES) return { text, truncated: false };
  const buf = Buffer.from(text);
  // Cut on a character boundary: skip UTF-8 continuation bytes.
  let start = buf.length - STEP_OUTPUT_LOG_BYTES;
  while (start < buf.length && (buf[start]! & 0xc0) === 0x80) start++;
  return { text: buf.subarray(start).toString('utf8'), truncated: true };
}

export interface StepRecord {
  readonly kind: 'exec' | 'ansible';
  readonly command: string;
  readonly args: readonly string[];
  readonly exitCode: number | null;
  readonly signal?: string | null;
  readonly durationMs: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the step failed (its error's message). */
  readonly error?: string;
}

/** Logs a finished step on the current run's logger, if any. */
export function logStep(step: StepRecord): void {
  const log = current.getStore();
  if (log === undefined) return;
  const out = capped(step.stdout);
  const err = capped(step.stderr);
  const fields = {
    step: step.kind,
    command: step.command,
    args: step.args.slice(0, 32),
    exitCode: step.exitCode,
    ...(step.signal ? { signal: step.signal } : {}),
    durationMs: Math.round(step.durationMs * 10) / 10,
    ...(out.text !== '' ? { stdout: out.text } : {}),
    ...(err.text !== '' ? { stderr: err.text } : {}),
    ...(out.truncated || err.truncated ? { outputTruncated: true } : {}),
  };
  const name = step.command.split('/').pop() ?? step.command;
  if (step.error === undefined) log.info(fields, `${step.kind} ${name}: exit ${step.exitCode ?? step.signal}`);
  else log.warn({ ...fields, error: step.error }, `${step.kind} ${name} failed: ${step.error}`);
}
