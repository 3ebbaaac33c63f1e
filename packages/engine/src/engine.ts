/**
 * The service engine: a FIFO inbox of events, processed one run at a time.
 *
 * Life of an event: `submit` appends it to the inbox and returns a promise
 * that settles when the event's run has committed (and `onCommit`, which the
 * agent uses to make the commit durable, has resolved), so a caller can ack
 * a peer only after that. Events that arrive during a run wait their turn.
 *
 * A failed run is rolled back and retried after an exponential backoff with
 * jitter, on the injected clock. After `retry.limit` failed attempts the
 * engine enters `error`, naming the handler, its error and the event, and
 * holds the inbox until the operator calls `resolve()` (retry now) or
 * `skip()` (drop the event). A run that does not converge goes to `error`
 * at once: retrying a cycle only repeats it.
 */
import { KEEP_ALIVE, systemClock, type Clock } from '@rhizome/clock';
import { EngineError } from './errors';
import { describeEvent, internalEvent, parseEvent, START_EVENT, type EngineEvent } from './events';
import { checkFactSchemas, type FactSchemas } from './fact-schema';
import { HandlerTable } from './internal/handler-table';
import { Fifo } from './internal/fifo';
import { ReadIndex } from './internal/read-index';
import { EMPTY_KNOWLEDGE_BASE, type KnowledgeBase } from './knowledge-base';
import { shardGet } from './internal/shards';
import { inMemoryRelationModel, type RelationModel } from './relation-model';
import type { RunReport } from './report';
import { EngineListeners } from './internal/engine-listeners';
import { batchBehind, burstWait, type InboxItem } from './internal/inbox-policy';
import { CommitPipeline, type InFlightCommit } from './internal/commit-pipeline';
import { executeRun, type BeforeCommitHook, type RunCommit } from './internal/run';
import {
  backoffDelay,
  DEFAULT_ENGINE_OPTIONS,
  resolveLimits,
  resolveRetry,
  type EngineErrorStatus,
  type EngineOptions,
  type EngineState,
  type EngineStatus,
  type RetryOptions,
  type SubmitOptions,
} from './engine-options';

export { backoffDelay, DEFAULT_ENGINE_OPTIONS, DEFAULT_RETRY_OPTIONS } from './engine-options';
export type { EngineErrorStatus, EngineOptions, EngineState, EngineStatus, RetryOptions, SubmitOptions } from './engine-options';

/**
 * Group commit: runs between two turns of the event loop while commits are in
 * flight (see pump). Small enough that I/O completions wait well under a
 * millisecond, large enough that the turns cost nothing measurable.
 */
const YIELD_EVERY_RUNS = 64;

export class Engine {
  private readonly table: HandlerTable;
  private readonly facts: FactSchemas | undefined;
  private readonly relationModel: RelationModel;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly retry: RetryOptions;
  private readonly maxHandlerExecutions: number;
  private readonly handlerDeadlineMs: number;
  private reads: ReadIndex;
  private readonly runIdPrefix: string;
  private readonly onCommit: EngineOptions['onCommit'];

  /** The head: every commit, durable or not; runs execute on it. */
  private kb: KnowledgeBase;
  /** The last durable commit: what `knowledge` shows. */
  private durableKb: KnowledgeBase;
  private readonly maxCommitsInFlight: number;
  /** Commits handed to onCommit and not durable yet, oldest first. */
  private readonly inFlight = new CommitPipeline(
    (entry) => this.commitDurable(entry),
    (entry, error) => this.commitFailed(entry, error),
  );
  private readonly inbox = new Fifo<InboxItem>();
  private state: EngineState = 'idle';
  private runCounter = 0;
  /** Reports kept for history(), onReport and afterCommit listeners. */
  private readonly listeners: EngineListeners;
  private beforeCommitHooks: readonly BeforeCommitHook[] = [];
  private lastError: EngineErrorStatus | undefined;
  private retryTimer: ReturnType<Clock['setTimeout']> | undefined;
  private nextAttemptAt: number | undefined;
  private pumping = false;
  private runsSinceYield = 0;
  private started = false;
  private readonly burst: { readonly quietMs: number; readonly maxMs: number } | undefined;
  private lastRelationQueuedAt = 0;
  private burstTimer: ReturnType<Clock['setTimeout']> | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(options: EngineOptions) {
    if (options.facts !== undefined) checkFactSchemas(options.facts);
    this.facts = options.facts;
    this.table = new HandlerTable(options.handlers, options.facts);
    this.relationModel = options.relationModel ?? inMemoryRelationModel;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.retry = resolveRetry(options.retry);
    const limits = resolveLimits(options);
    this.maxHandlerExecutions = limits.maxHandlerExecutions;
    this.handlerDeadlineMs = limits.handlerDeadlineMs;
    this.burst = limits.burst;
    this.maxCommitsInFlight = limits.maxCommitsInFlight;
    this.listeners = new EngineListeners(options.historySize ?? DEFAULT_ENGINE_OPTIONS.historySize, options.onError);
    this.runIdPrefix = options.runIdPrefix ?? DEFAULT_ENGINE_OPTIONS.runIdPrefix;
    this.onCommit = options.onCommit;
    this.kb = options.initial ?? EMPTY_KNOWLEDGE_BASE;
    this.reads = ReadIndex.fromKnowledge(this.kb, this.handlerNames);
    this.durableKb = this.kb;
  }

  /** The last committed (durable) knowledge base (immutable). */
  get knowledge(): KnowledgeBase {
    return this.durableKb;
  }

  get handlerNames(): readonly string[] {
    return this.table.handlers.map((h) => h.name);
  }

  status(): EngineStatus {
    const last = this.listeners.last();
    return {
      state: this.state,
      queued: this.inbox.length,
      runs: this.runCounter,
      ...(this.lastError ? { error: this.lastError } : {}),
      ...(last ? { lastReport: last } : {}),
      ...(this.nextAttemptAt !== undefined ? { nextAttemptAt: this.nextAttemptAt } : {}),
    };
  }

  /**
   * Preconditions on facts that no committed run ever set (nor cleared),
   * for a charm that does not declare its facts: usually a misspelled name
   * (`kafka.instaled`), which otherwise leaves a unit waiting with no clue.
   * Only meaningful once start-up has settled (see `startupSettled`).
   * Empty when the charm declares its facts (misspellings are refused then).
   * O(handlers): for status, not hot paths.
   */
  neverSetFacts(): Array<{ readonly handler: string; readonly fact: string }> {
    if (this.facts !== undefined) return [];
    const out: Array<{ handler: string; fact: string }> = [];
    for (const h of this.table.handlers) {
      for (const t of h.pre.tokens) {
        if (!t.startsWith('@') && (shardGet(this.kb.versions, t) ?? 0) === 0) out.push({ handler: h.name, fact: t });
      }
    }
    return out;
  }

  /** True once the start run has committed and the engine is idle with nothing queued. */
  get startupSettled(): boolean {
    return this.started && this.state === 'idle' && this.inbox.length === 0 && !this.pumping;
  }

  /** Reports of the most recent runs, oldest first (failed attempts included). */
  history(): readonly RunReport[] {
    return this.listeners.history();
  }

  /** Every run report (failed attempts included), for logs and tools. Not for data that must reach peers: use afterCommit. */
  onReport(listener: (report: RunReport) => void): () => void {
    return this.listeners.onReport(listener);
  }

  /**
   * Called once for each committed run, in commit order, after the commit is
   * durable (the `onCommit` option resolved) and `knowledge` shows it, and
   * before the submitter's promise settles. This is where work that must
   * follow a commit belongs (e.g. queueing outgoing relation data). A listener
   * that throws or rejects is reported to `onError`; the engine carries on.
   */
  afterCommit(listener: (commit: RunCommit) => void | Promise<void>): () => void {
    return this.listeners.afterCommit(listener);
  }

  /**
   * Registers a hook that stages, into every run's transaction, what follows
   * from the run's changes, once its handlers are done and before it commits
   * (BeforeCommitHook): what it writes is committed, made durable and rolled
   * back with the run, as one record. packages/relations numbers outgoing
   * link messages here. A hook that throws fails the run (rolled back,
   * retried like a failing handler). Returns the unregister function.
   */
  beforeCommit(hook: BeforeCommitHook): () => void {
    this.beforeCommitHooks = [...this.beforeCommitHooks, hook];
    return () => {
      this.beforeCommitHooks = this.beforeCommitHooks.filter((h) => h !== hook);
    };
  }

  /**
   * Runs the start event: `atStartup` handlers and every fact-only handler
   * that is due (facts may have changed while the agent was down, or the
   * charm may have new handlers).
   */
  start(): Promise<RunReport> {
    const run = this.enqueue(internalEvent(START_EVENT), undefined, true, false, true, false);
    run.then(() => (this.started = true), () => undefined);
    return run;
  }

  /** Queues an event; settles when its run commits (or is skipped / the engine stops). */
  submit(event: EngineEvent, options: SubmitOptions = {}): Promise<RunReport> {
    return this.enqueue(parseEvent(event), options.apply, false, options.failFast === true, options.gather !== false, options.rideAlong === true);
  }

  /** In `error` or `retrying`: retry the failed event now. */
  resolve(): void {
    if (this.state !== 'error' && this.state !== 'retrying') {
      throw new EngineError('ENGINE_ERR_STATE', `nothing to resolve: the engine is ${this.state}`);
    }
    this.cancelRetry();
    this.lastError = undefined;
    this.state = 'idle';
    const head = this.inbox.at(0);
    if (head) head.attempts = 0;
    void this.pump();
  }

  /** In `error` or `retrying`: drop the failed event (its submitter gets ENGINE_ERR_SKIPPED) and go on. */
  skip(): void {
    if (this.state !== 'error' && this.state !== 'retrying') {
      throw new EngineError('ENGINE_ERR_STATE', `nothing to skip: the engine is ${this.state}`);
    }
    this.cancelRetry();
    const head = this.inbox.shift();
    this.lastError = undefined;
    this.state = 'idle';
    head?.reject(new EngineError('ENGINE_ERR_SKIPPED', `run for ${head ? describeEvent(head.event) : 'event'} was skipped by the operator`));
    void this.pump();
  }

  /** Resolves when the inbox is empty and no run is in progress (or the engine is in error / stopped). */
  whenIdle(): Promise<void> {
    if (this.isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Finishes the current run, then rejects everything still queued. */
  async stop(): Promise<void> {
    this.cancelRetry();
    if (this.burstTimer !== undefined) this.clock.clearTimeout(this.burstTimer);
    this.burstTimer = undefined;
    const wasPumping = this.pumping;
    this.state = 'stopped';
    if (wasPumping) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    for (const item of this.inbox.takeAll()) {
      item.reject(new EngineError('ENGINE_ERR_STOPPED', `engine stopped before ${describeEvent(item.event)} ran`));
    }
    this.notifyIdle();
  }

  private enqueue(event: EngineEvent, apply: InboxItem['apply'], fullScan: boolean, failFast: boolean, gather: boolean, rideAlong: boolean): Promise<RunReport> {
    if (this.state === 'stopped') {
      return Promise.reject(new EngineError('ENGINE_ERR_STOPPED', `engine is stopped; ${describeEvent(event)} was not queued`));
    }
    return new Promise<RunReport>((resolve, reject) => {
      const queuedAt = this.clock.now();
      if (event.kind === 'relation') this.lastRelationQueuedAt = queuedAt;
      this.inbox.push({ event, apply, fullScan, failFast, gather, rideAlong, queuedAt, resolve, reject, attempts: 0 });
      void this.pump();
    });
  }

  private isSettled(): boolean {
    return !this.pumping && this.inFlight.length === 0 && (this.inbox.length === 0 || this.state === 'error' || this.state === 'retrying' || this.state === 'stopped');
  }

  private notifyIdle(): void {
    if (!this.isSettled()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        while (this.state === 'idle' || this.state === 'running') {
          const item = this.inbox.at(0);
          if (!item) break;
          const wait = burstWait(item, this.burst, this.lastRelationQueuedAt, this.clock.now());
          if (wait > 0) {
            // Come back when the burst has gathered (or its window closed).
            // Queued events are due work: the process stays up until they run.
            this.burstTimer ??= this.clock.setTimeout(
              () => {
                this.burstTimer = undefined;
                void this.pump();
              },
              wait,
              KEEP_ALIVE,
            );
            break;
          }
          this.state = 'running';
          await this.attempt(item);
          // Group commit: bounded; beyond the bound, wait for the oldest commit to be durable.
          const inFlight = this.inFlight.length;
          if (inFlight > 0 && inFlight >= this.maxCommitsInFlight) await this.inFlight.nextSettle();
          else if (inFlight > 0 && ++this.runsSinceYield >= YIELD_EVERY_RUNS) {
            // Runs chain on microtasks: without a turn of the event loop, the
            // write and fsync of the commits in flight cannot progress (their
            // completions are I/O callbacks), and the disk and the CPU take
            // turns instead of overlapping.
            this.runsSinceYield = 0;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        }
        if (this.inFlight.length === 0) break;
        // Idle only once every commit is durable (or abandoned: then the inbox holds its event again).
        await this.inFlight.nextSettle();
      }
      if (this.state === 'running') this.state = 'idle';
    } finally {
      this.pumping = false;
      this.notifyIdle();
    }
  }

  private async attempt(item: InboxItem): Promise<void> {
    const batch = batchBehind(this.inbox, item);
    item.attempts += 1;
    this.runCounter += 1;
    const runId = `${this.runIdPrefix}-${this.runCounter}`;
    const result = await executeRun({
      kb: this.kb,
      table: this.table,
      reads: this.reads,
      event: item.event,
      apply: item.apply,
      relationModel: this.relationModel,
      clock: this.clock,
      runId,
      attempt: item.attempts,
      maxHandlerExecutions: this.maxHandlerExecutions,
      handlerDeadlineMs: this.handlerDeadlineMs,
      fullScan: item.fullScan,
      facts: this.facts,
      batch: batch.map((b) => ({ event: b.event, apply: b.apply })),
      beforeCommit: this.beforeCommitHooks,
    });

    if (result.ok && this.maxCommitsInFlight > 1) {
      this.pipelineCommit(item, batch, result.commit);
      return;
    }
    if (result.ok) {
      try {
        if (this.onCommit) await this.onCommit(result.commit);
      } catch (thrown) {
        // The commit could not be made durable: it must not take effect.
        const message = `commit of ${result.commit.report.eventLabel} could not be persisted: ${thrown instanceof Error ? thrown.message : String(thrown)}`;
        this.listeners.record({ ...result.commit.report, outcome: 'failed', error: { code: 'ENGINE_ERR_STATE', message } });
        this.enterError({ code: 'ENGINE_ERR_STATE', message, event: result.commit.report.eventLabel, attempts: item.attempts });
        return;
      }
      this.kb = result.commit.kb;
      this.reads.refresh(this.kb, executedOk(result.commit.report));
      this.durableKb = this.kb;
      this.inbox.drop(1 + batch.length);
      // A retry that commits makes the earlier failure history (kept in the
      // reports), not state: status must not keep claiming an error.
      this.lastError = undefined;
      if (this.inbox.length === 0 && this.state === 'running') this.state = 'idle';
      this.listeners.record(result.commit.report);
      this.listeners.notifyCommitted(result.commit);
      item.resolve(result.commit.report);
      for (const b of batch) b.resolve(result.commit.report);
      return;
    }

    this.listeners.record(result.report);
    const failure: EngineErrorStatus = {
      ...(result.report.error?.handler !== undefined ? { handler: result.report.error.handler } : {}),
      code: result.error.code,
      message: result.error.message,
      event: result.report.eventLabel,
      attempts: item.attempts,
    };
    if (item.failFast) {
      // Rolled back (nothing staged survives); the submitter gets the failure, the unit carries on.
      this.inbox.shift();
      item.reject(new EngineError('ENGINE_ERR_RUN_FAILED', result.error.message, { cause: result.error }));
      return;
    }
    if (result.error.code === 'ENGINE_ERR_NONCONVERGENT' || item.attempts >= this.retry.limit) {
      this.enterError(failure);
      return;
    }
    this.lastError = failure;
    const delay = backoffDelay(this.retry, item.attempts, this.random);
    this.state = 'retrying';
    this.nextAttemptAt = this.clock.now() + delay;
    // A retry is due work (the event is still in the inbox): it keeps the process alive.
    this.retryTimer = this.clock.setTimeout(
      () => {
        this.retryTimer = undefined;
        this.nextAttemptAt = undefined;
        if (this.state !== 'retrying') return;
        this.state = 'idle';
        void this.pump();
      },
      delay,
      KEEP_ALIVE,
    );
  }

  /**
   * Group commit: the run takes effect for later runs at once, and for
   * everyone else (knowledge, reports, afterCommit, the submitter) once
   * onCommit says it is durable. Commits settle strictly in order.
   */
  private pipelineCommit(item: InboxItem, batch: readonly InboxItem[], commit: RunCommit): void {
    let durable: Promise<void>;
    try {
      durable = Promise.resolve(this.onCommit?.(commit));
    } catch (thrown) {
      durable = Promise.reject(thrown);
    }
    const entry: InFlightCommit = { item, batch, commit, before: this.kb, outcome: undefined };
    this.kb = commit.kb;
    this.reads.refresh(this.kb, executedOk(commit.report));
    this.inbox.drop(1 + batch.length);
    this.lastError = undefined;
    // Takes effect (commitDurable) or fails (commitFailed) strictly in commit order.
    this.inFlight.push(entry, durable);
  }

  private commitDurable(entry: InFlightCommit): void {
    this.durableKb = entry.commit.kb;
    this.listeners.record(entry.commit.report);
    this.listeners.notifyCommitted(entry.commit);
    entry.item.resolve(entry.commit.report);
    for (const b of entry.batch) b.resolve(entry.commit.report);
  }

  private commitFailed(entry: InFlightCommit, thrown: unknown): void {
    // This commit and every later one (they ran on top of it) are abandoned; their events run again after resolve().
    // (Their onCommit promises still settle later: settled() ignores entries no longer in flight.)
    const abandoned = this.inFlight.takeAll();
    this.kb = entry.before;
    // What handlers read is kept in the knowledge base: rebuild the index for the state the engine went back to.
    this.reads = ReadIndex.fromKnowledge(this.kb, this.handlerNames);
    this.inbox.unshiftAll(abandoned.flatMap((a) => [a.item, ...a.batch]));
    this.cancelRetry();
    const message = `commit of ${entry.commit.report.eventLabel} could not be persisted: ${thrown instanceof Error ? thrown.message : String(thrown)}`;
    this.listeners.record({ ...entry.commit.report, outcome: 'failed', error: { code: 'ENGINE_ERR_STATE', message } });
    if (this.state !== 'stopped') this.enterError({ code: 'ENGINE_ERR_STATE', message, event: entry.commit.report.eventLabel, attempts: entry.item.attempts });
  }

  private enterError(error: EngineErrorStatus): void {
    this.state = 'error';
    this.lastError = error;
  }

  private cancelRetry(): void {
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.nextAttemptAt = undefined;
  }
}

/** Handlers that completed in a run (once each): their read bookkeeping changed. */
function executedOk(report: RunReport): Set<string> {
  const names = new Set<string>();
  for (const s of report.steps) if (s.outcome === 'ok') names.add(s.handler);
  return names;
}

