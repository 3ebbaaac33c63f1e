/**
 * The engine's inbox entries and the two decisions it makes about the head
 * of the inbox before a run: how long a relation event still waits for its
 * burst to gather, and which events waiting behind it join its run. Pure
 * functions of the inbox and the clock, so engine.ts keeps only the loop.
 */
import type { EngineEvent } from '../events';
import type { Transaction } from '../handler';
import type { RunReport } from '../report';
import type { Fifo } from './fifo';

export interface InboxItem {
  readonly event: EngineEvent;
  readonly apply: ((tx: Transaction) => void) | undefined;
  readonly fullScan: boolean;
  readonly failFast: boolean;
  /** SubmitOptions.gather. */
  readonly gather: boolean;
  /** SubmitOptions.rideAlong. */
  readonly rideAlong: boolean;
  /** Clock time it was queued (for the burst window). */
  readonly queuedAt: number;
  readonly resolve: (report: RunReport) => void;
  readonly reject: (error: unknown) => void;
  attempts: number;
}

/** Relation events applied in one run at most (see batchBehind). */
const MAX_BATCH = 32;

/**
 * A burst converges in one pass: relation events already waiting behind a
 * relation event at the head of the inbox are applied in the same run (one
 * transaction, all or nothing; each event still queues its own handlers),
 * so a fact-only handler that renders the relation (configure-nginx) runs
 * once per burst instead of once per event. Only consecutive relation
 * events (and internal events submitted to ride along, which do not end
 * the burst), never a fail-fast or start run, at most MAX_BATCH.
 */
export function batchBehind(inbox: Fifo<InboxItem>, item: InboxItem): InboxItem[] {
  const batchable = (i: InboxItem): boolean => i.event.kind === 'relation' && !i.fullScan && !i.failFast;
  if (!batchable(item) || inbox.at(0) !== item) return [];
  const out: InboxItem[] = [];
  for (let i = 1; i < inbox.length && out.length < MAX_BATCH; i++) {
    const next = inbox.at(i)!;
    if (!batchable(next) && !(next.rideAlong && !next.fullScan && !next.failFast)) break;
    out.push(next);
  }
  return out;
}

/**
 * How long the head should still wait for its burst to gather (0: run now):
 * until no relation event arrived for `quietMs`, at most `maxMs` after it was
 * queued. Never for retries.
 */
export function burstWait(item: InboxItem, burst: { readonly quietMs: number; readonly maxMs: number } | undefined, lastRelationQueuedAt: number, now: number): number {
  if (burst === undefined || !item.gather || item.attempts > 0 || item.event.kind !== 'relation' || item.fullScan || item.failFast) return 0;
  const until = Math.min(item.queuedAt + burst.maxMs, lastRelationQueuedAt + burst.quietMs);
  return Math.max(0, until - now);
}
