/**
 * Bad usage, one way everywhere: exit code 2 and a message that names the
 * bad value and what is allowed. Two kinds of check produce it:
 *   - a value checked on its own (`--timeout abc`, `--format xml`, `scale
 *     kv 0`): an argument parser below, run by commander while it parses,
 *     which throws commander's InvalidArgumentError ("option '--timeout
 *     <seconds>' argument 'abc' is invalid. takes ...");
 *   - a check that needs more than one value (`deploy` with neither BUNDLE
 *     nor --add, a payload that is not JSON without --raw): a UsageError
 *     thrown by the command, which runProgram (program.ts) maps to 2 with
 *     the command's usage line.
 * Everything else a command throws is a runtime error (exit 1).
 * No imports but commander and errors: the quick CLI bundles this file.
 */
import { InvalidArgumentError } from 'commander';
import { AgentError, type AgentErrorCode } from '../errors';

/**
 * The operator's command line is wrong: exit 2. `code` keeps the code the
 * same mistake had before it became a usage error (scripts match on it).
 */
export class UsageError extends AgentError {
  override readonly name = 'UsageError';
  /** Marks usage errors across bundles (the quick CLI has its own copy of this class). */
  readonly usage = true;
  constructor(message: string, code: AgentErrorCode = 'AGENT_ERR_USAGE') {
    super(code, message);
  }
}

export function isUsageError(err: unknown): err is UsageError {
  return err instanceof UsageError || (typeof err === 'object' && err !== null && (err as { usage?: unknown }).usage === true);
}

/** Seconds in (0, max]: `--timeout 30`, `--timeout 2.5`. */
export function secondsArg(max: number, example = '30'): (text: string) => number {
  return (text) => {
    const s = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(s > 0) || s > max) throw new InvalidArgumentError(`takes seconds in (0, ${max}], e.g. --timeout ${example}`);
    return s;
  };
}

/** A whole number in [min, max]. */
export function wholeArg(min: number, max: number, what = 'a whole number'): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new InvalidArgumentError(`takes ${what} from ${min} to ${max}`);
    return n;
  };
}

/** One of `values` (case-sensitive). */
export function choiceArg<T extends string>(values: readonly T[]): (text: string) => T {
  return (text) => {
    if (!(values as readonly string[]).includes(text)) throw new InvalidArgumentError(`takes one of ${values.join(', ')}`);
    return text as T;
  };
}

/** A TCP port, 0 (a free one) to 65535. */
export function portArg(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new InvalidArgumentError('takes a port number from 0 (a free one) to 65535');
  return Number(text);
}

/** The agents' log levels (log/logger.ts checks the same list; not imported: it loads pino). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const logLevelArg = choiceArg(LOG_LEVELS);
