/**
 * Logs of runs: the charm's logger (UnitContext.log) writes to the run in
 * progress, so every line a handler writes carries the run id; each run's
 * outcome is one line (info when committed, warn otherwise).
 */
import type { RunReport } from '@rhizome/engine';
import type { CharmLogger } from '../charm/define';
import { runLogger, type Logger } from '../log/logger';

/** The charm's logger: the current run's logger while a handler runs, else `base`. */
export function charmLogger(base: Logger, currentRun: () => Logger | undefined): CharmLogger {
  const call = (level: 'info' | 'warn' | 'error' | 'debug') => (obj: object | string, msg?: string) => {
    const l = currentRun() ?? base;
    if (typeof obj === 'string') l[level](obj);
    else l[level](obj, msg);
  };
  return { info: call('info'), warn: call('warn'), error: call('error'), debug: call('debug') };
}

/** One line per run report. */
export function logReport(log: Logger, r: RunReport): void {
  const l = runLogger(log, r.runId);
  const fields = { event: r.eventLabel, attempt: r.attempt, outcome: r.outcome, durationMs: r.durationMs, handlers: r.steps.map((s) => s.handler), factsChanged: r.factsChanged };
  if (r.outcome === 'committed') l.info(fields, `run committed: ${r.eventLabel}`);
  else l.warn({ ...fields, error: r.error }, `run ${r.outcome}: ${r.eventLabel}${r.error ? ` (${r.error.handler ?? ''}: ${r.error.message})` : ''}`);
}
