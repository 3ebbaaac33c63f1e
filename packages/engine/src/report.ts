/**
 * What a run tells about itself. Reports are what `status`, `rhizome logs`
 * and the charm-author test helper show: which handlers ran, in which order,
 * why each was queued, what each changed, and how the run ended.
 */
import type { EngineErrorCode } from './errors';
import type { EngineEvent } from './events';

export interface StepReport {
  readonly handler: string;
  /** The event that queued it, or `facts` for a fact-only handler that became due. */
  readonly queuedBy: string;
  /** Preconditions that held when it was queued, and the reads that changed since it last ran (`x changed`, `relation db changed`). */
  readonly because: readonly string[];
  readonly durationMs: number;
  readonly factsChanged: readonly string[];
  readonly relationsChanged: readonly string[];
  readonly raised: readonly string[];
  readonly notes: readonly string[];
  readonly outcome: 'ok' | 'failed';
  readonly error?: string;
}

export interface CompensationReport {
  readonly handler: string;
  readonly outcome: 'ok' | 'failed';
  readonly error?: string;
  readonly notes: readonly string[];
}

export type RunOutcome = 'committed' | 'failed' | 'nonconvergent';

export interface RunReport {
  readonly runId: string;
  readonly event: EngineEvent;
  /** One-line description of the event. */
  readonly eventLabel: string;
  /** 1 for the first try, 2 for the first retry... */
  readonly attempt: number;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly steps: readonly StepReport[];
  /** Facts whose committed value changed (empty unless committed). */
  readonly factsChanged: readonly string[];
  readonly relationsChanged: readonly string[];
  readonly outcome: RunOutcome;
  /**
   * Relation events that were waiting in the inbox when this run started and
   * were applied in it too (labels), after `event`: a burst converges in one
   * pass. Absent when the run had one event.
   */
  readonly batched?: readonly string[];
  readonly error?: { readonly code: EngineErrorCode; readonly handler?: string; readonly message: string };
  readonly compensated: readonly CompensationReport[];
}
