/** A run's steps: recorded while the run executes, frozen into its report. */
import type { StepReport } from '../report';

export interface MutableStep {
  handler: string;
  queuedBy: string;
  because: string[];
  durationMs: number;
  factsChanged: string[];
  relationsChanged: string[];
  raised: string[];
  notes: string[];
  dropped: string[];
  outcome: 'ok' | 'failed';
  error?: string;
}

export function freezeStep(s: MutableStep): StepReport {
  const notes = s.dropped.length > 0 ? [...s.notes, `dropped from the queue (precondition no longer holds): ${s.dropped.join(', ')}`] : s.notes;
  // Spelled out rather than `{ ...rest }`: object rest/spread was the largest
  // cost of a 10,000-step run in profiles.
  const step: StepReport = {
    handler: s.handler,
    queuedBy: s.queuedBy,
    because: s.because,
    durationMs: s.durationMs,
    factsChanged: uniqueSorted(s.factsChanged),
    relationsChanged: uniqueSorted(s.relationsChanged),
    raised: s.raised,
    notes,
    outcome: s.outcome,
    ...(s.error !== undefined ? { error: s.error } : {}),
  };
  return Object.freeze(step);
}

// Most steps change zero or one thing: skip the Set and the sort for them (runs of 10,000 steps showed this in profiles).
function uniqueSorted(xs: string[]): string[] {
  return xs.length < 2 ? xs : [...new Set(xs)].sort();
}
