/**
 * The engine's options, their defaults and checks, and the shapes of what
 * it reports (status, submit options). engine.ts re-exports them.
 */
import { EngineError } from './errors';
import type { FactSchemas } from './fact-schema';
import type { Clock } from '@rhizome/clock';
import type { KnowledgeBase } from './knowledge-base';
import type { RelationModel } from './relation-model';
import type { RunReport } from './report';
import type { HandlerSpec, Transaction } from './handler';
import type { RunCommit } from './internal/run';

export interface RetryOptions {
  /** Attempts before the engine stops in `error` (the first try counts). */
  readonly limit: number;
  /** Delay before the first retry. */
  readonly baseMs: number;
  /** Upper bound of any delay. */
  readonly maxMs: number;
  /** Fraction of the delay randomized, 0..1 (spreads retries of many agents). */
  readonly jitter: number;
}

export interface EngineOptions {
  readonly handlers: readonly HandlerSpec[];
  /**
   * The charm's declared facts (key → Standard Schema, e.g. zod). With them,
   * a precondition on an undeclared fact is refused here, and setting an
   * undeclared fact or a value its schema refuses fails the handler
   * (ENGINE_ERR_BAD_FACT). See defineFacts() for the typed helpers.
   */
  readonly facts?: FactSchemas;
  readonly relationModel?: RelationModel;
  /**
   * Time for retries, bursts and handler deadlines (default: systemClock;
   * a VirtualClock in tests). All of them keep the process alive: each is
   * work that is due.
   */
  readonly clock?: Clock;
  /** Random numbers in [0, 1), for jitter; inject a seeded one for determinism. */
  readonly random?: () => number;
  /** The committed knowledge base to start from (e.g. recovered from disk). */
  readonly initial?: KnowledgeBase;
  readonly retry?: Partial<RetryOptions>;
  /**
   * Executions of any ONE handler in one run before the run is declared
   * non-convergent (a handler that keeps seeing new values, e.g. a counter).
   * A cycle on values already seen is detected without waiting for it; the
   * number of different handlers a run executes is not limited.
   */
  readonly maxHandlerExecutions?: number;
  /** Default deadline (ms) of a handler's promise; a handler spec may override it with `deadlineMs`. */
  readonly handlerDeadlineMs?: number;
  /** Reports kept for `history()`. */
  readonly historySize?: number;
  /**
   * Let a burst of relation events gather before its run starts: a relation
   * event at the head of the inbox waits until no other arrived for
   * `quietMs`, at most `maxMs` after it was queued; then the run applies all
   * that waited (see batchBehind). Off by default (runs start at once); the
   * agent sets a few hundred ms, much less than one playbook run.
   */
  readonly burst?: { readonly quietMs: number; readonly maxMs: number };
  /** Prefix of run ids, e.g. the unit name. */
  readonly runIdPrefix?: string;
  /**
   * Called with every commit before it takes effect; the engine waits for it.
   * The agent appends the patches to its log and fsyncs here. If it throws,
   * the commit is abandoned and the engine goes to error. Work that follows a
   * commit (sending data to peers) belongs in `afterCommit` listeners.
   */
  readonly onCommit?: (commit: RunCommit) => void | Promise<void>;
  /**
   * Group commit: how many commits may be waiting for `onCommit` (their
   * fsync) while later runs already execute on top of them. 1 (the default)
   * waits for each commit before the next run starts. Above 1, `onCommit` is
   * still called once per commit, in order, and must make commits durable in
   * that order (an append-only log does); what depends on a commit (the
   * submitter's promise, `afterCommit`, `knowledge`, reports) still waits
   * until it is durable. If one fails, it and every commit after it are
   * abandoned: their events go back to the head of the inbox and the engine
   * enters `error`.
   */
  readonly maxCommitsInFlight?: number;
  /**
   * Errors thrown (or rejected) by `afterCommit` and `onReport` listeners.
   * The engine carries on: a listener's bug must not wedge the inbox. Without
   * it, such errors are emitted as process warnings.
   */
  readonly onError?: (error: EngineError) => void;
}

export const DEFAULT_RETRY_OPTIONS: RetryOptions = Object.freeze({
  // Three tries: one transient failure (a port still in use, a flaky
  // download) is common, three in a row usually mean a real problem.
  limit: 3,
  // Short enough that a transient failure heals quickly on a laptop...
  baseMs: 200,
  // ...and capped so an operator never waits minutes after fixing the cause.
  maxMs: 30_000,
  jitter: 0.2,
});

export const DEFAULT_ENGINE_OPTIONS = Object.freeze({
  // Per handler, not per run: a run may legitimately execute thousands of
  // different handlers. One handler re-running 1,000 times on ever-new
  // values is a loop (cycles on values already seen stop at once).
  maxHandlerExecutions: 1000,
  // Long enough for a playbook that downloads and installs a service; short
  // enough that a hung handler does not freeze the agent (inbox, relation
  // applies, acks) for good. Override per handler with `deadlineMs`.
  handlerDeadlineMs: 10 * 60_000,
  historySize: 100,
  runIdPrefix: 'run',
  // One commit at a time unless the host says its onCommit keeps order (the agent's log does).
  maxCommitsInFlight: 1,
});

export type EngineState = 'idle' | 'running' | 'retrying' | 'error' | 'stopped';

export interface EngineErrorStatus {
  readonly handler?: string;
  readonly code: string;
  readonly message: string;
  readonly event: string;
  readonly attempts: number;
}

export interface EngineStatus {
  readonly state: EngineState;
  readonly queued: number;
  readonly runs: number;
  readonly error?: EngineErrorStatus;
  readonly lastReport?: RunReport;
  /** When retrying: clock time of the next attempt. */
  readonly nextAttemptAt?: number;
}

export interface SubmitOptions {
  /** Staged at the start of the run, inside its transaction (e.g. write the remote data bag). */
  readonly apply?: (tx: Transaction) => void;
  /**
   * A failed run is rolled back and rejects the submitter at once
   * (ENGINE_ERR_RUN_FAILED with the handler's error as cause): no retry, no
   * `error` state. For operator actions, whose failure is an answer to the
   * operator, not a fault of the unit.
   */
  readonly failFast?: boolean;
  /**
   * Whether a relation event waits for its burst to gather (default true).
   * False for a link message with more of the same link right behind it:
   * those are queued only once this one commits, so waiting would gather
   * nothing and cost every message of a backlog the whole quiet window.
   */
  readonly gather?: boolean;
  /**
   * May be applied in the run of a relation burst queued ahead of it (default
   * false): for an internal event with no handlers of its own, such as a
   * link's bookkeeping, which would otherwise sit between the burst's events
   * and split it into several runs.
   */
  readonly rideAlong?: boolean;
}

/** The engine's bounds, checked (ENGINE_ERR_OPTIONS, naming the bad one) and defaulted. */
export function resolveLimits(options: EngineOptions): {
  readonly maxHandlerExecutions: number;
  readonly handlerDeadlineMs: number;
  readonly burst: { readonly quietMs: number; readonly maxMs: number } | undefined;
  readonly maxCommitsInFlight: number;
} {
  const maxHandlerExecutions = options.maxHandlerExecutions ?? DEFAULT_ENGINE_OPTIONS.maxHandlerExecutions;
  if (!Number.isInteger(maxHandlerExecutions) || maxHandlerExecutions < 1) {
    throw new EngineError('ENGINE_ERR_OPTIONS', `maxHandlerExecutions must be a positive integer, got ${String(options.maxHandlerExecutions)}`);
  }
  const handlerDeadlineMs = options.handlerDeadlineMs ?? DEFAULT_ENGINE_OPTIONS.handlerDeadlineMs;
  if (!(typeof handlerDeadlineMs === 'number' && handlerDeadlineMs > 0)) {
    throw new EngineError('ENGINE_ERR_OPTIONS', `handlerDeadlineMs must be a positive number of milliseconds (Infinity for none), got ${String(options.handlerDeadlineMs)}`);
  }
  let burst: { readonly quietMs: number; readonly maxMs: number } | undefined;
  if (options.burst !== undefined) {
    const { quietMs, maxMs } = options.burst;
    if (!(quietMs >= 0 && maxMs >= quietMs && maxMs <= 60_000)) {
      throw new EngineError('ENGINE_ERR_OPTIONS', `burst must be { quietMs, maxMs } with 0 <= quietMs <= maxMs <= 60000, got ${JSON.stringify(options.burst)}`);
    }
    burst = { quietMs, maxMs };
  }
  const maxCommitsInFlight = options.maxCommitsInFlight ?? DEFAULT_ENGINE_OPTIONS.maxCommitsInFlight;
  if (!Number.isInteger(maxCommitsInFlight) || maxCommitsInFlight < 1) {
    throw new EngineError('ENGINE_ERR_OPTIONS', `maxCommitsInFlight must be a positive integer, got ${String(options.maxCommitsInFlight)}`);
  }
  return { maxHandlerExecutions, handlerDeadlineMs, burst, maxCommitsInFlight };
}

export function resolveRetry(input: Partial<RetryOptions> | undefined): RetryOptions {
  const r = { ...DEFAULT_RETRY_OPTIONS, ...input };
  if (!Number.isInteger(r.limit) || r.limit < 1) throw new EngineError('ENGINE_ERR_OPTIONS', `retry.limit must be an integer >= 1, got ${r.limit}`);
  if (!(r.baseMs >= 0) || !(r.maxMs >= r.baseMs)) throw new EngineError('ENGINE_ERR_OPTIONS', `retry delays must satisfy 0 <= baseMs <= maxMs, got baseMs=${r.baseMs} maxMs=${r.maxMs}`);
  if (!(r.jitter >= 0 && r.jitter <= 1)) throw new EngineError('ENGINE_ERR_OPTIONS', `retry.jitter must be within 0..1, got ${r.jitter}`);
  return Object.freeze(r);
}

/** Exponential backoff: base·2^(attempt-1), capped, with ±jitter/2 of it randomized. */
export function backoffDelay(retry: RetryOptions, attempt: number, random: () => number): number {
  const exp = Math.min(retry.maxMs, retry.baseMs * 2 ** Math.max(0, attempt - 1));
  const spread = exp * retry.jitter;
  return Math.max(0, Math.min(retry.maxMs, exp - spread / 2 + random() * spread));
}
