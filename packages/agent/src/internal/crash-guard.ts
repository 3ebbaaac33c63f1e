/**
 * Charms run inside the agent's process, so charm code can fail outside the
 * handler promise the engine awaits: a rejection nobody awaits, a throw from
 * a timer, an 'error' event nobody listens to. Node's default is to print
 * the error on stderr and exit, which leaves `agent.log` (what `rhizome
 * logs` and the dashboard show) without a word about it.
 *
 * - An unhandled rejection changes no state of ours: it is logged (the first
 *   ones in full, then one summary line a minute, so a charm that leaks one
 *   per run cannot flood the log) and the agent keeps running.
 * - An uncaught exception may have left any object half-updated, so the
 *   process must not go on (Node's own advice). It is logged as fatal, the
 *   log flushed, and the process exits 70 (EX_SOFTWARE): like a SIGKILL, the
 *   durable state keeps every committed run and the run in flight rolls
 *   back; a supervisor starts the agent again.
 */
import type { Logger } from '../log/logger';

export interface CrashGuardOptions {
  readonly log: Logger;
  readonly unit: string;
  /** Rejections logged in full before the summary lines start. */
  readonly fullReports?: number;
  readonly summaryEveryMs?: number;
  /** Called after an uncaught exception is logged (default: flush and exit 70). */
  readonly onFatal?: (err: unknown) => void;
}

export const EXIT_UNCAUGHT = 70;

/** Installs the process-wide handlers; returns a function that removes them. */
export function installCrashGuard(o: CrashGuardOptions): () => void {
  const fullReports = o.fullReports ?? 5;
  const summaryEveryMs = o.summaryEveryMs ?? 60_000;
  let rejections = 0;
  let suppressed = 0;
  let lastSummary = 0;
  const onRejection = (reason: unknown): void => {
    rejections++;
    if (rejections <= fullReports) {
      o.log.error({ err: reason, rejections }, 'unhandled promise rejection (a promise in charm code that nobody awaits?); the agent keeps running');
      return;
    }
    suppressed++;
    const now = Date.now();
    if (now - lastSummary >= summaryEveryMs) {
      o.log.error({ err: reason, rejections, suppressed }, `unhandled promise rejections go on: ${suppressed} more since the last report`);
      lastSummary = now;
      suppressed = 0;
    }
  };
  const onException = (err: unknown): void => {
    o.log.fatal({ err }, 'uncaught exception (a throw from a callback in charm code, or an error event nobody listens to?); the agent exits: committed runs are kept, the run in flight rolls back');
    o.log.flush?.();
    process.stderr.write(`fatal: agent ${o.unit}: uncaught exception: ${(err as Error | undefined)?.stack ?? String(err)}\n`);
    if (o.onFatal) o.onFatal(err);
    else process.exit(EXIT_UNCAUGHT);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
