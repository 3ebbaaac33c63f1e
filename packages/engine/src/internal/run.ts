/**
 * One run: one event processed as one transaction. The rules (DESIGN.md,
 * "Engine semantics"):
 *
 * 1. The event's apply step (e.g. incoming relation data) is staged first.
 * 2. The triggering event becomes active: every handler whose event
 *    precondition matches and whose fact preconditions hold is queued. Then
 *    the event is inactive: nothing queued later can see it.
 * 3. Fact-only handlers are queued when *due*: their preconditions hold and
 *    a token they read changed since they last ran successfully. On `start`
 *    every fact-only handler is checked; later, only those indexed under the
 *    tokens that changed.
 * 4. The queue runs in a deterministic order (priority, then declaration
 *    order). After each handler: queued handlers reading a token it changed
 *    are retested on their fact preconditions (false ones are dropped; event
 *    preconditions are not retested), and fact-only handlers indexed under
 *    the changed tokens that became due are added. An event a handler raises
 *    is active at that instant only: handlers it matches are queued then.
 * 5. When the queue is empty the stage commits atomically. A handler that
 *    throws aborts the run: the stage is dropped (nothing changed, no message
 *    leaves) and the `compensate` steps of the handlers that completed run in
 *    reverse order. A run exceeding the execution bound is aborted the same
 *    way, naming the handlers that kept re-queueing each other.
 *
 * A handler is due again when anything it read changed: its precondition
 * tokens and every read it made through its context (facts, keys under a
 * prefix, relation state). It records the versions of those reads *after* it
 * ran, so writing what it reads does not re-queue it by itself.
 *
 * A burst (the Engine batches relation events waiting behind one at the
 * head of its inbox): every batched event's apply is staged in step 1, so
 * the run sees the whole burst; after the first event's fixpoint each
 * batched event in turn is activated and its handlers run to a fixpoint.
 * One transaction: all the burst commits, or none of it.
 *
 * Non-convergence is a cycle: a handler executing again, in the same run, on
 * exactly the values it already saw (its reads and the event that queued it).
 * A handler that keeps seeing new values (a counter fed by another handler)
 * is stopped by a bound on the executions of any one handler; a run may run
 * many different handlers without limit.
 */
import { KEEP_ALIVE, type Clock } from '@rhizome/clock';
import { describeThrown, EngineError } from '../errors';
import { describeEvent, type EngineEvent } from '../events';
import type { CompiledHandler, Transaction } from '../handler';
import type { FactSchemas } from '../fact-schema';
import type { HandlerTable } from './handler-table';
import { RunQueue, type QueueEntry } from './run-queue';
import type { ReadIndex } from './read-index';
import type { KnowledgeBase } from '../knowledge-base';
import { explain, holds } from '../preconditions';
import type { RelationModel } from '../relation-model';
import type { CompensationReport, RunReport } from '../report';
import { compensate } from './compensate';
import { RunContext, StageTransaction } from './run-context';
import { describeCycle, describeReads, describeToken, fingerprint, ordinal, type Seen } from './run-explain';
import { freezeStep, type MutableStep } from './run-step';
import { Stage, type CommitResult } from './stage';

/** Node's timers fire at once for delays above this; longer deadlines mean "none". */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RunInput {
  readonly kb: KnowledgeBase;
  readonly table: HandlerTable;
  /** Which handlers read which tokens in their last successful run (committed). */
  readonly reads: ReadIndex;
  readonly event: EngineEvent;
  /** Staged before any handler is queued, inside the same transaction. */
  readonly apply?: ((tx: Transaction) => void) | undefined;
  readonly relationModel: RelationModel;
  readonly clock: Clock;
  readonly runId: string;
  readonly attempt: number;
  /** Executions of any one handler in one run before the run is declared non-convergent. */
  readonly maxHandlerExecutions: number;
  /** Default deadline of a handler (ms) when its spec sets none. */
  readonly handlerDeadlineMs: number;
  /** Check every fact-only handler for dueness (the start run). */
  readonly fullScan: boolean;
  /** The charm's declared facts, if any. */
  readonly facts?: FactSchemas | undefined;
  /** Further events applied in this same run, after `event` (a burst of relation events; see Engine). */
  readonly batch?: readonly { readonly event: EngineEvent; readonly apply?: ((tx: Transaction) => void) | undefined }[];
  /** Engine.beforeCommit hooks: staged last, once the queue is empty, inside the same transaction. */
  readonly beforeCommit?: readonly BeforeCommitHook[];
}

/**
 * Stages what follows from a run's other changes into the same transaction,
 * after its handlers reached their fixpoint and before it commits (e.g. the
 * relation link records of the data the run published). `changedRelations`
 * lists the relation state keys the run changed so far, sorted. What a hook
 * writes runs no handler: it should write only state no handler reads.
 */
export type BeforeCommitHook = (tx: Transaction, changedRelations: readonly string[]) => void;

export interface RunCommit extends CommitResult {
  readonly runId: string;
  readonly event: EngineEvent;
  readonly report: RunReport;
}

export type RunResult =
  | { readonly ok: true; readonly commit: RunCommit }
  | { readonly ok: false; readonly error: EngineError; readonly report: RunReport };

export function executeRun(input: RunInput): Promise<RunResult> {
  return new RunExecution(input).execute();
}

/**
 * The state of one run while it executes. A class with methods rather than a
 * function with nested closures: runs are the engine's hot path and a dozen
 * closures per run showed up in profiles.
 */
class RunExecution {
  private readonly stage: Stage;
  private readonly queue = new RunQueue();
  private readonly steps: MutableStep[] = [];
  private readonly completed: CompiledHandler[] = [];
  private readonly executedNames: string[] = [];
  /** Per handler: what each of its executions in this run saw (for cycle detection). */
  private readonly seen = new Map<string, Seen[]>();
  /** Reads recorded in this run, by token (the committed index is input.reads). */
  private readonly stagedReaders = new Map<string, Set<string>>();
  private readonly eventLabel: string;
  private readonly startedAt: number;

  constructor(private readonly input: RunInput) {
    this.startedAt = input.clock.now();
    this.stage = new Stage(input.kb, input.relationModel, (token) => input.reads.hasReaders(token) || this.stagedReaders.has(token), input.facts);
    this.eventLabel = describeEvent(input.event);
  }

  async execute(): Promise<RunResult> {
    try {
      return await this.executeInner();
    } catch (thrown) {
      // Not a handler: a precondition's value test or a relation model threw.
      // The run fails like any other (rolled back, retried) instead of
      // leaving its submitter waiting forever.
      const error = new EngineError('ENGINE_ERR_RUN_FAILED', `run for ${this.eventLabel} failed outside any handler (a precondition's value test or the relation model threw?): ${describeThrown(thrown)}`, { cause: thrown });
      return this.rollback(error, undefined, 'failed');
    }
  }

  private async executeInner(): Promise<RunResult> {
    const { input, stage, queue, table } = this;
    // 1. The event's own changes (e.g. remote relation data), inside the transaction.
    if (input.apply) {
      try {
        input.apply(new StageTransaction(stage));
      } catch (thrown) {
        const error = new EngineError('ENGINE_ERR_APPLY_FAILED', `applying ${this.eventLabel} failed: ${describeThrown(thrown)}`, { cause: thrown });
        return this.rollback(error, undefined, 'failed');
      }
    }
    // 1b. A burst: the changes of the other events batched into this run, in inbox order.
    for (const b of input.batch ?? []) {
      if (!b.apply) continue;
      try {
        b.apply(new StageTransaction(stage));
      } catch (thrown) {
        const error = new EngineError('ENGINE_ERR_APPLY_FAILED', `applying ${describeEvent(b.event)} (batched) failed: ${describeThrown(thrown)}`, { cause: thrown });
        return this.rollback(error, undefined, 'failed');
      }
    }
    const appliedTokens = stage.takeChanged();

    // 2. The triggering event is active while handlers are queued, then never again.
    this.activate(input.event, this.eventLabel, true);

    // 3. Fact-only handlers that are due.
    if (input.fullScan) for (const h of table.factOnly) this.enqueueDue(h);
    else this.enqueueReaders(appliedTokens);

    // 4. Run the queue to a fixpoint; then each batched event in turn becomes
    //    active and its handlers run to a fixpoint, so every event's handlers
    //    run (as if it had its own run) while fact-only handlers, already due
    //    on every batched change, run once unless a later handler changes what they read.
    for (const next of [undefined, ...(input.batch ?? [])]) {
      if (next) this.activate(next.event, describeEvent(next.event), true);
      for (;;) {
        const entry = queue.shift();
        if (entry === undefined) break;
        let failure = this.runHandler(entry);
        if (failure instanceof Promise) failure = await failure;
        if (failure) return failure;
      }
    }

    // 5. What follows from the run's changes, in the same transaction (no handler runs on it), then commit.
    for (const hook of input.beforeCommit ?? []) {
      try {
        hook(new StageTransaction(stage), stage.changedRelations());
      } catch (thrown) {
        const error = new EngineError('ENGINE_ERR_RUN_FAILED', `run for ${this.eventLabel} failed in a before-commit hook: ${describeThrown(thrown)}`, { cause: thrown });
        return this.rollback(error, undefined, 'failed');
      }
    }
    const committed = stage.commit();
    const report = this.finish('committed', undefined, []);
    return { ok: true, commit: { ...committed, runId: input.runId, event: input.event, report } };
  }

  private get table(): HandlerTable {
    return this.input.table;
  }

  /**
   * Runs one queued handler, then retests; returns a result only if the run
   * must stop. Synchronous for a synchronous handler (most are): a promise
   * per step was a measurable share of a durable run.
   */
  private runHandler(entry: QueueEntry): RunResult | undefined | Promise<RunResult | undefined> {
    const { stage, input } = this;
    const h = entry.handler;
    const previous = this.seen.get(h.name);
    if (previous !== undefined && previous.length >= input.maxHandlerExecutions) {
      return this.nonConvergent(entry, `handler "${h.name}" was about to execute a ${ordinal(previous.length + 1)} time (the bound is ${input.maxHandlerExecutions} executions of one handler in one run)`);
    }
    const step: MutableStep = {
      handler: h.name,
      queuedBy: entry.queuedBy,
      because: entry.because,
      durationMs: 0,
      factsChanged: [],
      relationsChanged: [],
      raised: [],
      notes: [],
      dropped: [],
      outcome: 'ok',
    };
    this.steps.push(step);
    this.executedNames.push(h.name);
    const t0 = input.clock.now();
    // The precondition tokens count as read: the handler saw them hold.
    const reads = new Map<string, unknown>();
    for (const t of h.pre.tokens) reads.set(t, stage.tokenValue(t));
    const ctx = new RunContext(stage, h.name, input.runId, entry.event, input.event, t0, step, this, reads);
    let result: unknown;
    try {
      result = h.spec.run(ctx);
    } catch (thrown) {
      return this.handlerFailed(h, ctx, step, t0, thrown);
    }
    if (result !== undefined && result !== null && typeof (result as Promise<void>).then === 'function') {
      return this.withDeadline(result as Promise<void>, h, ctx).then(
        () => this.handlerDone(entry, ctx, step, t0, reads, previous),
        (thrown: unknown) => this.handlerFailed(h, ctx, step, t0, thrown),
      );
    }
    return this.handlerDone(entry, ctx, step, t0, reads, previous);
  }

  private handlerFailed(h: CompiledHandler, ctx: RunContext, step: MutableStep, t0: number, thrown: unknown): Promise<RunResult> {
    const { input } = this;
    ctx.close();
    step.durationMs = input.clock.now() - t0;
    step.outcome = 'failed';
    step.error = describeThrown(thrown);
    const error =
      thrown instanceof HandlerDeadline
        ? new EngineError('ENGINE_ERR_HANDLER_TIMEOUT', `handler "${h.name}" did not finish within ${thrown.ms} ms on ${this.eventLabel}; it was abandoned (its context is closed and ctx.signal aborted) and the run rolled back. Make it finish sooner, or raise its deadline with \`deadlineMs\` in its spec.`)
        : new EngineError('ENGINE_ERR_HANDLER_FAILED', `handler "${h.name}" failed on ${this.eventLabel}: ${step.error}`, { cause: thrown });
    return this.rollback(error, h.name, 'failed');
  }

  /** The handler completed: bookkeeping, cycle check, retest of what it changed. */
  private handlerDone(entry: QueueEntry, ctx: RunContext, step: MutableStep, t0: number, reads: Map<string, unknown>, previous: Seen[] | undefined): RunResult | undefined | Promise<RunResult> {
    const { stage, input } = this;
    const h = entry.handler;
    ctx.close();
    step.durationMs = input.clock.now() - t0;
    this.completed.push(h);
    // Only handlers queued by facts become due on what they read; event and
    // start-up handlers keep no bookkeeping (a commit stays O(what changed)).
    if (h.pre.event === undefined && !h.atStartup) {
      stage.recordSuccess(h.name, [...reads.keys()]);
      for (const t of reads.keys()) {
        let names = this.stagedReaders.get(t);
        if (names === undefined) this.stagedReaders.set(t, (names = new Set()));
        names.add(h.name);
      }
    }

    // A cycle: this handler already executed in this run on exactly these values.
    const now: Seen = { event: entry.fromTrigger ? undefined : entry.event, reads };
    if (previous === undefined) this.seen.set(h.name, [now]);
    else {
      if (!entry.fromTrigger && previous.some((p) => fingerprint(p) === fingerprint(now))) {
        return this.nonConvergent(undefined, `handler "${h.name}" executed again on values it had already seen in this run (${describeReads(reads)})`);
      }
      previous.push(now);
    }

    // Retest: only what reads a changed token can have changed its mind.
    const changed = stage.takeChanged();
    if (changed.size === 0) return undefined;
    for (const t of changed) {
      if (t.startsWith('@rel/')) step.relationsChanged.push(t.slice(5));
      else if (!t.startsWith('@')) step.factsChanged.push(t);
    }
    for (const t of changed) {
      for (const q of this.table.forToken(t)) {
        const e = this.queue.get(q.name);
        if (e !== undefined && q.pre.facts !== undefined && !holds(q.pre.facts, stage) && this.queue.remove(q.name)) step.dropped.push(q.name);
      }
    }
    this.enqueueReaders(changed);
    return undefined;
  }

  /** Awaits a handler's promise, for at most its deadline. */
  private async withDeadline(result: Promise<void>, h: CompiledHandler, ctx: RunContext): Promise<void> {
    const ms = h.spec.deadlineMs ?? this.input.handlerDeadlineMs;
    if (!(ms <= MAX_TIMER_MS)) {
      await result;
      return;
    }
    const clock = this.input.clock;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const expired = new Promise<never>((_, reject) => {
      // The deadline must fire even if the handler awaits only unref'd work.
      timer = clock.setTimeout(
        () => {
          // The abandoned promise may still reject later: nobody awaits it.
          result.then(undefined, () => undefined);
          ctx.abort();
          reject(new HandlerDeadline(ms));
        },
        ms,
        KEEP_ALIVE,
      );
    });
    try {
      await Promise.race([result, expired]);
    } finally {
      if (timer !== undefined) clock.clearTimeout(timer);
    }
  }

  /** Called by a handler's context when it raises an event: active at this instant only. */
  raised(step: MutableStep, e: EngineEvent): void {
    step.raised.push(e.name);
    this.activate(e, `event ${e.name}`, false);
  }

  /** Queues the fact-only handlers that read one of these tokens (preconditions or context reads) and are due. */
  private enqueueReaders(tokens: Iterable<string>): void {
    for (const t of tokens) {
      for (const h of this.table.forToken(t)) this.enqueueDue(h);
      const committed = this.input.reads.readers(t);
      if (committed !== undefined) for (const name of committed) this.enqueueDueByName(name);
      const staged = this.stagedReaders.get(t);
      if (staged !== undefined) for (const name of staged) this.enqueueDueByName(name);
    }
  }

  private enqueueDueByName(name: string): void {
    const h = this.table.byName(name);
    if (h !== undefined) this.enqueueDue(h);
  }

  /** undefined when not due; else the reads that changed since it last ran (empty if it never ran). */
  private dueBecause(h: CompiledHandler): string[] | undefined {
    const stage = this.stage;
    if (h.pre.event !== undefined || h.atStartup) return undefined;
    if (h.pre.facts === undefined || !holds(h.pre.facts, stage)) return undefined;
    const bk = stage.handlerBookkeeping(h.name);
    if (bk === undefined) return [];
    let changed: string[] | undefined;
    for (const t in bk.seen) if (stage.version(t) !== bk.seen[t]) (changed ??= []).push(describeToken(t));
    // Older bookkeeping may predate a precondition token (a charm upgrade).
    for (const t of h.pre.tokens) if (!(t in bk.seen) && stage.version(t) !== 0) (changed ??= []).push(describeToken(t));
    return changed;
  }

  private enqueueDue(h: CompiledHandler): void {
    if (this.queue.has(h.name)) return;
    const changed = this.dueBecause(h);
    if (changed === undefined) return;
    this.queue.add({ handler: h, event: undefined, fromTrigger: false, queuedBy: 'facts', because: [...explain(h.pre.facts, this.stage), ...changed] });
  }

  private activate(e: EngineEvent, queuedBy: string, fromTrigger: boolean): void {
    for (const h of this.table.forEvent(e)) {
      if (this.queue.has(h.name)) continue;
      const pre = h.pre.event;
      if (pre && pre.kind === 'event' && pre.test && !pre.test(e.payload)) continue;
      if (h.pre.facts && !holds(h.pre.facts, this.stage)) continue;
      this.queue.add({ handler: h, event: e, fromTrigger, queuedBy, because: [queuedBy, ...explain(h.pre.facts, this.stage)] });
    }
  }

  private nonConvergent(pending: QueueEntry | undefined, why: string): Promise<RunResult> {
    if (pending) this.queue.add(pending);
    const cycle = describeCycle(this.executedNames, this.queue.handlerNames());
    const error = new EngineError(
      'ENGINE_ERR_NONCONVERGENT',
      `run for ${this.eventLabel} did not converge: ${why}; handlers in the cycle: ${cycle}. Each keeps changing something another one reads: make one of them stop (e.g. guard it with not(fact(...)) or only write when the value differs).`,
    );
    return this.rollback(error, undefined, 'nonconvergent');
  }

  private async rollback(error: EngineError, failedHandler: string | undefined, outcome: 'failed' | 'nonconvergent'): Promise<RunResult> {
    const compensated = await compensate(this.completed, {
      runId: this.input.runId,
      trigger: this.input.event,
      before: this.input.kb,
      failure: { handler: failedHandler ?? '(apply)', message: error.message },
    });
    const report = this.finish(outcome, { code: error.code, ...(failedHandler !== undefined ? { handler: failedHandler } : {}), message: error.message }, compensated);
    return { ok: false, error, report };
  }

  private finish(outcome: RunReport['outcome'], error: RunReport['error'], compensated: CompensationReport[]): RunReport {
    const { input, stage } = this;
    return {
      runId: input.runId,
      event: input.event,
      eventLabel: this.eventLabel,
      attempt: input.attempt,
      startedAt: this.startedAt,
      durationMs: input.clock.now() - this.startedAt,
      steps: this.steps.map(freezeStep),
      factsChanged: outcome === 'committed' ? stage.changedFacts() : [],
      relationsChanged: outcome === 'committed' ? stage.changedRelations() : [],
      outcome,
      ...(input.batch && input.batch.length > 0 ? { batched: input.batch.map((b) => describeEvent(b.event)) } : {}),
      ...(error ? { error } : {}),
      compensated,
    };
  }
}

class HandlerDeadline extends Error {
  constructor(readonly ms: number) {
    super(`deadline of ${ms} ms passed`);
  }
}
