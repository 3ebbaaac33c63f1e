/**
 * The agent's structured logs: pino JSON lines, one logger per unit.
 *
 * Every line carries `unit`; `runLogger(logger, runId)` makes the child
 * logger a run uses, so every line of a run carries its `runId` and an
 * operator can pull one run's story out of the log. Lines go to a file, a
 * stream or stdout, and also into a `LogTail` if one is given, for the control
 * API's log stream. Values under common secret keys are redacted.
 */
import { pino } from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';
import { AgentError } from '../errors';
import type { LogTail } from './log-tail';

export type { Logger } from 'pino';

export type LogLevel = Level | 'silent';

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** The unit name, on every line. */
  unit: string;
  /** A file path (appended to, created with its directory), a stream, or stdout when omitted. */
  destination?: string | DestinationStream | NodeJS.WritableStream;
  /** Also keep lines here for `rhizome logs`. */
  tail?: LogTail;
  /** Write files synchronously (default true): the last lines before a crash are the ones that matter. */
  sync?: boolean;
}

export const DEFAULT_LOGGER_OPTIONS = Object.freeze({
  level: 'info' as LogLevel,
  sync: true,
});

/** Keys whose values never reach a log line (relation data carries passwords). */
export const REDACTED_PATHS: readonly string[] = Object.freeze([
  'password',
  'token',
  'secret',
  '*.password',
  '*.token',
  '*.secret',
  'headers.authorization',
]);

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Creates a unit's logger. */
export function createLogger(opts: CreateLoggerOptions): Logger {
  const level = opts.level ?? DEFAULT_LOGGER_OPTIONS.level;
  if (!LEVELS.includes(level)) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `log level '${String(level)}' is not one of ${LEVELS.join(', ')}`);
  }
  if (typeof opts.unit !== 'string' || opts.unit === '') {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', 'createLogger: `unit` must name the unit (e.g. "web/0")');
  }
  const sync = opts.sync ?? DEFAULT_LOGGER_OPTIONS.sync;
  const dest = opts.destination;
  const main: DestinationStream =
    dest === undefined
      ? pino.destination({ dest: 1, sync })
      : typeof dest === 'string'
        ? pino.destination({ dest, mkdir: true, append: true, sync })
        : (dest as DestinationStream);
  const stream =
    opts.tail === undefined
      ? main
      : pino.multistream([
          { stream: main, level: 'trace' },
          { stream: opts.tail, level: 'trace' },
        ]);
  return pino(
    {
      level,
      base: { unit: opts.unit, pid: process.pid },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    stream,
  );
}

/** The logger of one run: every line it (or its children) writes carries `runId`. */
export function runLogger(logger: Logger, runId: string, bindings: Record<string, unknown> = {}): Logger {
  return logger.child({ ...bindings, runId });
}
