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
 * A fact-only handler records the versions it saw *after* it ran, so writing
 * a fact it reads does not re-queue it by itself; two handlers feeding each
 * other forever do, and hit the bound.
 */
import type { Clock } from './clock';
import { describeThrown, EngineError } from './errors';
import { describeEvent, internalEvent, type EngineEvent } from './events';
import type { CompiledHandler, CompensateContext, HandlerContext, Transaction, WorkloadState } from './handler';
import type { HandlerTable } from './handler-table';
import type { Json } from './json';
import type { KnowledgeBase } from './knowledge-base';
import { explain, holds } from './preconditions';
import type { RelationFactName, RelationModel } from './relation-model';
import type { CompensationReport, RunReport, StepReport } from './report';
import { Stage, type CommitResult } from './stage';
import type { OutboxMessage } from './handler';

export interface RunInput {
  readonly kb: KnowledgeBase;
  readonly table: HandlerTable;
  readonly event: EngineEvent;
  /** Staged before any handler is queued, inside the same transaction. */
  readonly apply?: ((tx: Transaction) => void) | undefined;
  readonly relationModel: RelationModel;
  readonly clock: Clock;
  readonly runId: string;
  readonly attempt: number;
  readonly maxHandlerExecutions: number;
  /** Check every fact-only handler for dueness (the start run). */
  readonly fullScan: boolean;
}

export interface RunCommit extends CommitResult {
  readonly runId: string;
  readonly event: EngineEvent;
  readonly outbox: readonly OutboxMessage[];
  readonly report: RunReport;
}

export type RunResult =
  | { readonly ok: true; readonly commit: RunCommit }
  | { readonly ok: false; readonly error: EngineError; readonly report: RunReport };

interface QueueEntry {
  readonly handler: CompiledHandler;
  readonly event: EngineEvent | undefined;
  readonly queuedBy: string;
  readonly because: string[];
}

/** Handlers waiting to run, kept sorted: higher priority first, then declaration order. */
class RunQueue {
  private readonly entries: QueueEntry[] = [];
  private readonly names = new Set<string>();

  get size(): number {
    return this.entries.length;
  }
  has(name: string): boolean {
    return this.names.has(name);
  }
  add(entry: QueueEntry): void {
    if (this.names.has(entry.handler.name)) return;
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.entries[mid]!.handler, entry.handler)) lo = mid + 1;
      else hi = mid;
    }
    this.entries.splice(lo, 0, entry);
    this.names.add(entry.handler.name);
  }
  shift(): QueueEntry | undefined {
    const e = this.entries.shift();
    if (e) this.names.delete(e.handler.name);
    return e;
  }
  /** Removes entries the predicate rejects; returns their names. */
  retain(keep: (e: QueueEntry) => boolean): string[] {
    const dropped: string[] = [];
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      if (!keep(e)) {
        this.entries.splice(i, 1);
        this.names.delete(e.handler.name);
        dropped.unshift(e.handler.name);
      }
    }
    return dropped;
  }
  handlerNames(): string[] {
    return this.entries.map((e) => e.handler.name);
  }
}

function before(a: CompiledHandler, b: CompiledHandler): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.index < b.index;
}

interface MutableStep {
  handler: string;
  queuedBy: string;
  because: string[];
  durationMs: number;
  factsChanged: string[];
  relationsChanged: string[];
  messages: number;
  raised: string[];
  notes: string[];
  dropped: string[];
  outcome: 'ok' | 'failed';
  error?: string;
}

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
  private readonly eventLabel: string;
  private readonly startedAt: number;

  constructor(private readonly input: RunInput) {
    this.startedAt = input.clock.now();
    this.stage = new Stage(input.kb, input.relationModel);
    this.eventLabel = describeEvent(input.event);
  }

  async execute(): Promise<RunResult> {
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
    const appliedTokens = stage.takeChanged();

    // 2. The triggering event is active while handlers are queued, then never again.
    this.activate(input.event, this.eventLabel);

    // 3. Fact-only handlers that are due.
    if (input.fullScan) for (const h of table.factOnly) this.enqueueDue(h);
    else for (const t of appliedTokens) for (const h of table.forToken(t)) this.enqueueDue(h);

    // 4. Run the queue to a fixpoint.
    for (;;) {
      const entry = queue.shift();
      if (entry === undefined) break;
      if (this.executedNames.length >= input.maxHandlerExecutions) {
        queue.add(entry);
        const cycle = describeCycle(this.executedNames, queue.handlerNames());
        const error = new EngineError(
          'ENGINE_ERR_NONCONVERGENT',
          `run for ${this.eventLabel} did not converge after ${input.maxHandlerExecutions} handler executions; handlers in the cycle: ${cycle}. Each keeps changing a fact another one reads: make one of them stop (e.g. guard it with not(fact(...)) or only write when the value differs).`,
        );
        return this.rollback(error, undefined, 'nonconvergent');
      }
      const failure = await this.runHandler(entry);
      if (failure) return failure;
    }

    // 5. Commit.
    const committed = stage.commit();
    const report = this.finish('committed', undefined, []);
    return { ok: true, commit: { ...committed, runId: input.runId, event: input.event, outbox: [...stage.outbox], report } };
  }

  private get table(): HandlerTable {
    return this.input.table;
  }

  /** Runs one queued handler, then retests; returns a result only if the run must stop. */
  private async runHandler(entry: QueueEntry): Promise<RunResult | undefined> {
    const { stage, input } = this;
    const h = entry.handler;
    const step: MutableStep = {
      handler: h.name,
      queuedBy: entry.queuedBy,
      because: entry.because,
      durationMs: 0,
      factsChanged: [],
      relationsChanged: [],
      messages: 0,
      raised: [],
      notes: [],
      dropped: [],
      outcome: 'ok',
    };
    this.steps.push(step);
    this.executedNames.push(h.name);
    const outboxBefore = stage.outbox.length;
    const t0 = input.clock.now();
    const ctx = new RunContext(stage, h.name, input.runId, entry.event, input.event, t0, step, this);
    try {
      const result = h.spec.run(ctx);
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') await result;
    } catch (thrown) {
      ctx.close();
      step.durationMs = input.clock.now() - t0;
      step.outcome = 'failed';
      step.error = describeThrown(thrown);
      const error = new EngineError('ENGINE_ERR_HANDLER_FAILED', `handler "${h.name}" failed on ${this.eventLabel}: ${step.error}`, { cause: thrown });
      return this.rollback(error, h.name, 'failed');
    }
    ctx.close();
    step.durationMs = input.clock.now() - t0;
    step.messages = stage.outbox.length - outboxBefore;
    this.completed.push(h);
    stage.recordSuccess(h.name, h.pre.tokens);

    // Retest: only what reads a changed token can have changed its mind.
    const changed = stage.takeChanged();
    if (changed.size === 0) return undefined;
    for (const t of changed) {
      if (t.startsWith('@rel/')) step.relationsChanged.push(t.slice(5));
      else step.factsChanged.push(t);
    }
    step.dropped = this.queue.retain((e) => e.handler.pre.facts === undefined || !readsAny(e.handler, changed) || holds(e.handler.pre.facts, stage));
    for (const t of changed) for (const dep of this.table.forToken(t)) this.enqueueDue(dep);
    return undefined;
  }

  /** Called by a handler's context when it raises an event: active at this instant only. */
  raised(step: MutableStep, e: EngineEvent): void {
    step.raised.push(e.name);
    this.activate(e, `event ${e.name}`);
  }

  private isDue(h: CompiledHandler): boolean {
    const stage = this.stage;
    if (h.pre.event !== undefined || h.atStartup) return false;
    if (h.pre.facts === undefined || !holds(h.pre.facts, stage)) return false;
    const bk = stage.handlerBookkeeping(h.name);
    if (bk === undefined) return true;
    for (const t of h.pre.tokens) if (stage.version(t) !== (bk.seen[t] ?? 0)) return true;
    return false;
  }

  private enqueueDue(h: CompiledHandler): void {
    if (!this.queue.has(h.name) && this.isDue(h)) {
      this.queue.add({ handler: h, event: undefined, queuedBy: 'facts', because: explain(h.pre.facts, this.stage) });
    }
  }

  private activate(e: EngineEvent, queuedBy: string): void {
    for (const h of this.table.forEvent(e)) {
      if (this.queue.has(h.name)) continue;
      const pre = h.pre.event;
      if (pre && pre.kind === 'event' && pre.test && !pre.test(e.payload)) continue;
      if (h.pre.facts && !holds(h.pre.facts, this.stage)) continue;
      this.queue.add({ handler: h, event: e, queuedBy, because: [queuedBy, ...explain(h.pre.facts, this.stage)] });
    }
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
      messages: [...stage.outbox],
      outcome,
      ...(error ? { error } : {}),
      compensated,
    };
  }
}

function readsAny(h: CompiledHandler, changed: Set<string>): boolean {
  for (const t of h.pre.tokens) if (changed.has(t)) return true;
  return false;
}

function describeCycle(executed: readonly string[], queued: readonly string[]): string {
  const window = executed.slice(-100);
  const counts = new Map<string, number>();
  for (const n of window) counts.set(n, (counts.get(n) ?? 0) + 1);
  const repeating = [...counts].filter(([, c]) => c > 1).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const names = repeating.length > 0 ? repeating.map(([n, c]) => `${n} (${c}× in the last ${window.length})`) : queued;
  return names.join(', ');
}

function freezeStep(s: MutableStep): StepReport {
  const { dropped, ...rest } = s;
  const notes = dropped.length > 0 ? [...s.notes, `dropped from the queue (precondition no longer holds): ${dropped.join(', ')}`] : s.notes;
  return Object.freeze({ ...rest, factsChanged: [...new Set(s.factsChanged)].sort(), relationsChanged: [...new Set(s.relationsChanged)].sort(), notes });
}

/**
 * The transaction surface over a stage. A class rather than an object of
 * closures: one is built per handler execution, and per-call closures were a
 * measurable share of a run's overhead.
 */
class StageTransaction implements Transaction {
  constructor(protected readonly stage: Stage) {}
  protected check(): void {}
  get<T extends Json = Json>(key: string): T | undefined {
    this.check();
    return this.stage.fact(key) as T | undefined;
  }
  has(key: string): boolean {
    this.check();
    const v = this.stage.fact(key);
    return v !== undefined && v !== false;
  }
  // An explicit `undefined` is an error, not a flag: only a missing argument means `true`.
  set(key: string, ...value: [Json?]): void {
    this.check();
    this.stage.set(key, value.length === 0 ? true : (value[0] as Json));
  }
  clear(key: string): void {
    this.check();
    this.stage.clear(key);
  }
  keys(prefix?: string): string[] {
    this.check();
    return this.stage.keys(prefix);
  }
  send(to: string, topic: string, payload: Json): void {
    this.check();
    this.stage.send({ to, topic, payload });
  }
  relationState(endpoint: string): Json | undefined {
    this.check();
    return this.stage.relationState(endpoint);
  }
  updateRelationState(endpoint: string, recipe: (draft: any) => Json | void): void {
    this.check();
    this.stage.updateRelationState(endpoint, recipe);
  }
  relationFact(endpoint: string, fact: RelationFactName, key?: string): Json | undefined {
    this.check();
    return this.stage.relationFact(endpoint, fact, key);
  }
}

class RunContext extends StageTransaction implements HandlerContext {
  private open = true;
  constructor(
    stage: Stage,
    readonly handler: string,
    readonly runId: string,
    readonly event: EngineEvent | undefined,
    readonly trigger: EngineEvent,
    readonly now: number,
    private readonly step: MutableStep,
    private readonly run: { raised(step: MutableStep, e: EngineEvent): void },
  ) {
    super(stage);
  }
  protected override check(): void {
    if (!this.open) {
      throw new EngineError('ENGINE_ERR_CONTEXT_CLOSED', `handler "${this.handler}" used its context after it returned (a stray callback or an un-awaited promise?); await everything inside run()`);
    }
  }
  close(): void {
    this.open = false;
  }
  raise(name: string, payload?: Json): void {
    this.check();
    this.run.raised(this.step, internalEvent(name, payload));
  }
  setStatus(state: WorkloadState, message: string): void {
    this.check();
    this.stage.set('workload.status', { state, message });
  }
  note(message: string): void {
    this.check();
    this.step.notes.push(message);
  }
}

async function compensate(
  completed: readonly CompiledHandler[],
  base: Omit<CompensateContext, 'handler' | 'note'>,
): Promise<CompensationReport[]> {
  const reports: CompensationReport[] = [];
  for (let i = completed.length - 1; i >= 0; i--) {
    const h = completed[i]!;
    if (!h.spec.compensate) continue;
    const notes: string[] = [];
    try {
      await h.spec.compensate({ ...base, handler: h.name, note: (m) => notes.push(m) });
      reports.push({ handler: h.name, outcome: 'ok', notes });
    } catch (thrown) {
      // A failing compensation is reported, and the remaining ones still run:
      // stopping half-way would leave more external state behind.
      reports.push({ handler: h.name, outcome: 'failed', error: describeThrown(thrown), notes });
    }
  }
  return reports;
}
