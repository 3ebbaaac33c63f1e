/**
 * What the engine tells others about its runs: the bounded report history,
 * `onReport` listeners (logs, tools) and `afterCommit` listeners (work that
 * follows a durable commit). A listener's error is reported to `onError`
 * (or as a process warning) and never reaches the engine: a listener's bug
 * must not wedge the inbox.
 */
import { describeThrown, EngineError } from '../errors';
import type { RunReport } from '../report';
import type { RunCommit } from './run';

export class EngineListeners {
  private readonly reports: RunReport[] = [];
  private readonly reportListeners = new Set<(report: RunReport) => void>();
  private readonly commitListeners = new Set<(commit: RunCommit) => void | Promise<void>>();

  constructor(
    private readonly historySize: number,
    private readonly onError: ((error: EngineError) => void) | undefined,
  ) {}

  /** The most recent report, if any. */
  last(): RunReport | undefined {
    return this.reports[this.reports.length - 1];
  }

  /** The reports kept, oldest first. */
  history(): readonly RunReport[] {
    return [...this.reports];
  }

  onReport(listener: (report: RunReport) => void): () => void {
    this.reportListeners.add(listener);
    return () => this.reportListeners.delete(listener);
  }

  afterCommit(listener: (commit: RunCommit) => void | Promise<void>): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /** Keeps a report (bounded) and hands it to the onReport listeners. */
  record(report: RunReport): void {
    this.reports.push(report);
    if (this.reports.length > this.historySize) this.reports.shift();
    for (const l of this.reportListeners) {
      try {
        l(report);
      } catch (thrown) {
        // A listener's bug must not break the engine, nor go unseen.
        this.listenerFailed('onReport', report.runId, thrown);
      }
    }
  }

  /** Hands a durable commit to the afterCommit listeners, in registration order. */
  notifyCommitted(commit: RunCommit): void {
    for (const l of this.commitListeners) {
      try {
        const r = l(commit);
        if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
          (r as Promise<void>).then(undefined, (thrown: unknown) => this.listenerFailed('afterCommit', commit.runId, thrown));
        }
      } catch (thrown) {
        this.listenerFailed('afterCommit', commit.runId, thrown);
      }
    }
  }

  private listenerFailed(kind: 'onReport' | 'afterCommit', runId: string, thrown: unknown): void {
    const error = new EngineError('ENGINE_ERR_LISTENER', `an ${kind} listener failed after run ${runId}: ${describeThrown(thrown)}`, { cause: thrown });
    if (this.onError) {
      try {
        this.onError(error);
        return;
      } catch {
        // Fall through to the process warning: the error must not vanish.
      }
    }
    process.emitWarning(error.message, { code: error.code });
  }
}
